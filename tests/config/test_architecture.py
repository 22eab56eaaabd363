"""The layering (docs/architecture.md) is part of the test suite too, so a
violating import fails `make test` as well as `make lint` and CI."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from accounts import hooks

ROOT = Path(__file__).resolve().parents[2]


def test_the_import_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.fail("import-linter is not installed: `make install`")

    result = subprocess.run(
        [lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_apps_above_accounts_take_part_in_deletion_through_hooks():
    """billing and apps_catalog register in their AppConfig.ready()."""
    from apps_catalog.services import app_fork_counts_release
    from billing.services import user_deletion_refuse_while_subscribed

    assert user_deletion_refuse_while_subscribed in hooks._deletion_checks
    assert app_fork_counts_release in hooks._before_deletion


def test_a_hook_registered_twice_runs_once(monkeypatch):
    calls = []
    monkeypatch.setattr(hooks, "_before_deletion", [])

    def prepare(*, user):
        calls.append(user)

    hooks.before_user_deletion_register(prepare)
    hooks.before_user_deletion_register(prepare)
    hooks.before_user_deletion_run(user="u")

    assert calls == ["u"]
