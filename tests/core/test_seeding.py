"""The generic seed machinery: argument parsing, COPY batching, time order, the
registry, and that none of it depends on an app."""

import ast
import datetime as dt
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from core import seeding
from core.models import FeatureFlag
from core.seeding import (
    HISTORY_DAYS,
    SeedContext,
    Timeline,
    VolumeError,
    batch_sizes,
    columns_check,
    copy_batches,
    seeder_register,
    seeders,
    volume_count_parse,
)

ROOT = Path(__file__).resolve().parents[2]
APP_PACKAGES = {"accounts", "apps_catalog", "searches", "billing", "ops", "bench"}


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "", True, "100000001", 10**20])
def test_bad_numbers_are_refused(value):
    with pytest.raises(VolumeError):
        volume_count_parse(value, name="users")


@pytest.mark.parametrize("value, number", [("1_000", 1000), (" 7 ", 7), (0, 0)])
def test_good_numbers_are_parsed(value, number):
    assert volume_count_parse(value, name="users") == number


def test_timeline_hands_out_consecutive_slices_oldest_first():
    now = timezone.now()
    timeline = Timeline(10, rng=random.Random(1), now=now)

    first, second = timeline.moments(4), timeline.moments(6)

    assert first == sorted(first) and second == sorted(second)
    assert max(first) <= min(second)  # the second batch is newer throughout
    assert min(first) >= now - dt.timedelta(days=HISTORY_DAYS)
    assert max(second) <= now


def test_batch_sizes_split_the_total_into_full_batches_and_a_rest():
    assert list(batch_sizes(7, 3)) == [3, 3, 1]
    assert list(batch_sizes(0, 3)) == []


def test_columns_check_refuses_a_stale_column_list():
    columns = tuple(f.column for f in FeatureFlag._meta.concrete_fields)

    assert columns_check(FeatureFlag, columns) == columns
    with pytest.raises(RuntimeError, match=r"missing \['key'\], unknown \['gone'\]"):
        columns_check(FeatureFlag, (*(c for c in columns if c != "key"), "gone"))


@pytest.mark.django_db
def test_copy_batches_copies_every_batch_and_counts_rows():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE seeding_probe (n integer, label text)")
    context = SeedContext(
        rng=random.Random(1), now=timezone.now(), batch_size=3, progress=False
    )
    sizes = []

    def make_batch(n):
        sizes.append(n)
        return [(len(sizes) * 10 + i, "row") for i in range(n)]

    copied = copy_batches(
        context,
        label="probe",
        total=7,
        make_batch=make_batch,
        table="seeding_probe",
        columns=("n", "label"),
    )

    assert copied == 7 and sizes == [3, 3, 1]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(DISTINCT n) FROM seeding_probe")
        assert cursor.fetchone() == (7, 7)


def test_context_timed_records_seconds_per_label():
    context = SeedContext(rng=random.Random(1), now=timezone.now())

    with context.timed("users"):
        pass

    assert list(context.result.seconds) == ["users"]
    assert context.result.seconds["users"] >= 0


def test_registry_finds_every_apps_seeder_in_layer_order():
    names = [s.name for s in seeders()]

    assert names == ["accounts", "apps_catalog", "searches", "billing", "core"]
    assert all(s.demo is not None for s in seeders())
    assert [s.name for s in seeders() if s.volume] == [
        "accounts",
        "apps_catalog",
        "searches",
    ]
    assert [s.name for s in seeders() if s.needs_owners] == [
        "apps_catalog",
        "searches",
    ]


def test_registering_a_name_again_replaces_it(monkeypatch):
    monkeypatch.setattr(seeding, "_registry", dict(seeding._registry))

    def demo(*, admin, stdout=None):
        return {}

    seeder_register(name="probe", order=99, demo=demo)
    replaced = seeder_register(name="probe", order=5, demo=demo)

    assert [s for s in seeders() if s.name == "probe"] == [replaced]
    assert seeders().index(replaced) < [s.name for s in seeders()].index("apps_catalog")


def _python(code: str) -> str:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def test_seeders_are_discovered_from_each_apps_seed_module_on_first_use():
    out = _python(
        "import json, sys, django; django.setup()\n"
        "from core.seeding import seeders\n"
        "before = sorted(m for m in sys.modules if m.endswith('.seed'))\n"
        "names = [s.name for s in seeders()]\n"
        "print(json.dumps([before, names]))\n"
    )
    before, names = json.loads(out)

    assert before == []  # nothing is imported until the seeders are asked for
    assert names == ["accounts", "apps_catalog", "searches", "billing", "core"]


def test_core_seeding_imports_no_app_package():
    out = _python(
        "import json, sys\n"
        "import core.seeding\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )

    assert not APP_PACKAGES & set(json.loads(out))


@pytest.mark.parametrize("path", ["core/seeding.py", "core/seed.py"])
def test_core_seed_modules_name_no_app_package(path):
    tree = ast.parse((ROOT / path).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            imported.add(node.module.split(".")[0])

    assert not APP_PACKAGES & imported
