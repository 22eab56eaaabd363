# Every target creates .venv and installs what it needs on a fresh machine;
# the stamp file makes repeat runs skip the install.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: install run test lint lint-imports format migrate seed bench stop-db clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: $(STAMP)
	$(PY) manage.py migrate --noinput

# Web and job worker together (config/Procfile.dev); Ctrl-C stops both.
run: migrate
	$(PY) manage.py seed --if-empty
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" PORT=$(PORT) $(VENV)/bin/honcho -f config/Procfile.dev -d . start

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/lint-imports

# The layering contract alone (pyproject.toml [tool.importlinter]); CI runs it.
lint-imports: $(STAMP)
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

seed: migrate
	$(PY) manage.py seed

# Benchmark suite (never part of `make test`): SCALE=small (default) or large.
# See README "Benchmarks"; results go to bench/results/<date>-<scale>.md.
SCALE ?= small
bench: $(STAMP)
	$(PY) bench/run.py --scale $(SCALE) $(BENCH_ARGS)

stop-db: $(STAMP)
	$(PY) manage.py embedded_db stop

clean:
	rm -rf $(VENV) staticfiles
