"""Explore and the fork tree on a big catalog (opt-in: takes minutes).

    CATALOG_SCALE_ROWS=1000000 DJANGO_TEST_DB_NAME=test_apps_catalog \\
        .venv/bin/python -m pytest tests/apps_catalog/test_scale.py -s

Loads N apps (70 % ACTIVE, a third of them forks, skewed fork counts) and one
monetization model each inside the test transaction, then checks the plans and
prints timings. Everything is rolled back afterwards.
"""

import os
import re
import time

import pytest
from django.core.paginator import Paginator
from django.db import connection

from apps_catalog import selectors
from apps_catalog.models import App
from core.pagination import CappedPaginator

ROWS = int(os.environ.get("CATALOG_SCALE_ROWS", "0"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db,
    pytest.mark.skipif(not ROWS, reason="set CATALOG_SCALE_ROWS to run"),
]


def _sql(sql, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else None


def _ms(fn):
    start = time.perf_counter()
    result = fn()
    return result, (time.perf_counter() - start) * 1000


def _load(rows: int) -> None:
    # Like a restore: no FK triggers during the load, indexes built afterwards.
    _sql("SET LOCAL session_replication_role = replica")
    indexes = _sql(
        "SELECT indexname, indexdef FROM pg_indexes "
        "WHERE tablename = 'apps_catalog_app' AND indexname LIKE 'app\\_%%\\_idx'"
    )
    for name, _definition in indexes:
        _sql(f'DROP INDEX "{name}"')
    _sql(
        "INSERT INTO accounts_user (id, password, email, name, first_name, last_name,"
        " image, role, is_active, tier, keyword_searches_this_month,"
        " keyword_searches_total, stripe_customer_id, stripe_subscription_id,"
        " subscription_status, subscription_plan, created_at, updated_at)"
        " SELECT 'u' || lpad(g::text, 24, '0'), '!', 'scale' || g || '@example.com',"
        " 'User ' || g, '', '', '', 'USER', true, 'FREE', 0, 0, '', '', '', '',"
        " now(), now() FROM generate_series(1, 10000) g"
    )
    _sql(
        "INSERT INTO apps_catalog_app (id, name, description, owner_id,"
        " forked_from_id, status, domain, fork_count, created_at, updated_at)"
        " SELECT 'a' || lpad(g::text, 24, '0'),"
        " (ARRAY['Habit','Invoice','Recipe','Budget','Chat','Notes','Fitness',"
        "'Travel'])[1 + g %% 8] || ' ' || md5(g::text),"
        " 'An app about ' || md5((g * 7)::text),"
        " 'u' || lpad((1 + g %% 10000)::text, 24, '0'),"
        " CASE WHEN g > 1000 AND g %% 3 = 0 THEN"
        " 'a' || lpad((1 + (g::bigint * 7919) %% (g - 1))::text, 24, '0') END,"
        " (ARRAY['ACTIVE','ACTIVE','ACTIVE','ACTIVE','ACTIVE','ACTIVE','ACTIVE',"
        "'DRAFT','ARCHIVED','DELETED'])[1 + g %% 10],"
        " NULL, (power(random(), 8) * 500)::int,"
        " now() - (g || ' seconds')::interval, now()"
        " FROM generate_series(1, %s) g",
        [ROWS],
    )
    _sql(
        "INSERT INTO apps_catalog_monetizationmodel (id, app_id, type, price,"
        " subscription_interval, features, created_at, updated_at)"
        " SELECT 'm' || lpad(g::text, 24, '0'), 'a' || lpad(g::text, 24, '0'),"
        " (ARRAY['FREE','FREEMIUM','USAGE_BASED','ONE_TIME','SUBSCRIPTION'])"
        "[1 + g %% 5], CASE WHEN g %% 5 IN (3, 4) THEN 9.99 END,"
        " CASE WHEN g %% 5 = 4 THEN 'MONTHLY' ELSE '' END, ARRAY['x'], now(), now()"
        " FROM generate_series(1, %s) g",
        [ROWS],
    )
    _sql("SET LOCAL maintenance_work_mem = '256MB'")
    for _name, definition in indexes:
        _sql(definition)
    _sql("SET LOCAL session_replication_role = origin")
    for table in (
        "accounts_user",
        "apps_catalog_app",
        "apps_catalog_monetizationmodel",
    ):
        _sql(f"ANALYZE {table}")


def test_explore_and_fork_tree_stay_fast_on_a_big_catalog():
    _, load_ms = _ms(lambda: _load(ROWS))
    print(f"\nloaded {ROWS:,} apps in {load_ms / 1000:.1f} s")

    # (filters, what the plan must show). A common word is best found by
    # walking the newest-first index and filtering; a rare one through pg_trgm.
    cases = {
        "newest": ({}, None),
        "most forked": ({"sort": "forks"}, None),
        "SUBSCRIPTION, most forked": (
            {"monetization_type": "SUBSCRIPTION", "sort": "forks"},
            None,
        ),
        "search 'invoice' (1 app in 8)": ({"query": "invoice"}, None),
        "search 'zzzq' (no app)": ({"query": "zzzq"}, "trgm_idx"),
    }
    for label, (filters, must_use) in cases.items():
        apps = selectors.apps_explore(**filters)
        plan = apps[:24].explain()
        _, page_ms = _ms(lambda apps=apps: list(apps[:24]))
        label_count, capped_ms = _ms(
            lambda apps=apps: CappedPaginator(apps, 24).count_label
        )
        full, full_ms = _ms(lambda apps=apps: Paginator(apps, 24).count)
        print(
            f"{label}: page {page_ms:.1f} ms; count {label_count} in "
            f"{capped_ms:.1f} ms (full COUNT(*) = {full:,} in {full_ms:.1f} ms)"
        )
        if must_use:
            assert must_use in plan, plan
        else:
            # Rows come out of an index in (nearly) page order: no full sort of
            # every matching app before LIMIT.
            assert not re.search(r"(^|->  )Sort ", plan), plan

    for number in (1, ROWS // 2, ROWS - 1):
        app = App.objects.get(pk="a" + str(number).zfill(24))
        tree, tree_ms = _ms(
            lambda app=app: selectors.app_fork_tree(app=app, viewer=None)
        )
        print(f"fork tree of app {number}: {tree.size} nodes in {tree_ms:.1f} ms")
        assert (
            tree.size <= selectors.FORK_TREE_MAX_NODES + selectors.FORK_TREE_MAX_DEPTH
        )
