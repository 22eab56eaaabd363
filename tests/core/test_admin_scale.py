"""Every changelist of a table that can grow large stays cheap at any size.

- the same number of queries with few and with many rows;
- no ``COUNT(*)`` of the whole table (the estimate, or a count capped with
  ``LIMIT``);
- every filter choice and the default ordering are served by an index (no
  sequential scan and no sort of the table, checked with ``EXPLAIN`` under
  ``enable_seqscan = off`` / ``enable_sort = off``: a plan that still needs one
  is marked ``Disabled``);
- searches run on indexes.
"""

import datetime as dt
import hashlib
import itertools
import json
from urllib.parse import urlencode

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from allauth.usersessions.models import UserSession
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import MagicLink, User
from apps_catalog.models import App, Requirement
from core.admin_tools import EstimatedCountPaginator, LargeTableAdmin, listed_columns
from searches.models import SearchHistory
from tests.accounts.factories import UserFactory
from tests.apps_catalog.factories import (
    AppFactory,
    MonetizationModelFactory,
    PostFactory,
    RequirementFactory,
)
from tests.billing.factories import WebhookEventFactory
from tests.core.factories import AuditLogFactory, SystemMetricFactory
from tests.searches.factories import (
    APIUsageFactory,
    SavedSearchFactory,
    SearchHistoryFactory,
)

_seq = itertools.count()


def _magic_link(**kwargs):
    n = next(_seq)
    now = timezone.now()
    return MagicLink.objects.create(
        email=f"link{n}@example.com",
        token_hash=hashlib.sha256(f"t{n}".encode()).hexdigest(),
        expires_at=now + dt.timedelta(minutes=10),
        used_at=now if n % 2 else None,
        **kwargs,
    )


def _email_address():
    user = UserFactory()
    return EmailAddress.objects.create(user=user, email=user.email, primary=True)


def _social_account():
    n = next(_seq)
    return SocialAccount.objects.create(
        user=UserFactory(), provider="github" if n % 2 else "google", uid=str(n)
    )


def _user_session():
    n = next(_seq)
    return UserSession.objects.create(
        user=UserFactory(), ip="127.0.0.1", session_key=f"s{n}", user_agent="x"
    )


def _audit_log():
    n = next(_seq)
    user = UserFactory()
    return AuditLogFactory(
        actor=user,
        actor_email=user.email,
        target_type="accounts.user" if n % 2 else "apps_catalog.app",
        target_id=user.pk,
    )


def _metric():
    return SystemMetricFactory(metric=f"metric.{next(_seq) % 3}")


def _webhook():
    return WebhookEventFactory(type=f"invoice.type{next(_seq) % 3}")


# model label -> row maker (each row brings the related rows it needs).
LARGE = {
    "accounts.user": UserFactory,
    "accounts.magiclink": _magic_link,
    "account.emailaddress": _email_address,
    "socialaccount.socialaccount": _social_account,
    "usersessions.usersession": _user_session,
    "apps_catalog.app": lambda: AppFactory(forked_from=AppFactory()),
    "apps_catalog.requirement": RequirementFactory,
    "apps_catalog.monetizationmodel": MonetizationModelFactory,
    "apps_catalog.post": PostFactory,
    "searches.savedsearch": SavedSearchFactory,
    "searches.searchhistory": SearchHistoryFactory,
    "searches.apiusage": lambda: APIUsageFactory(status_code=404),
    "billing.webhookevent": _webhook,
    "ops.auditlog": _audit_log,
    "ops.systemmetric": _metric,
}


def _url(label: str) -> str:
    app_label, model = label.split(".")
    return reverse(f"admin:{app_label}_{model}_changelist")


def _get(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, url
    return response, [q["sql"] for q in ctx.captured_queries]


def _table(label: str) -> str:
    model = next(m for m in admin.site._registry if m._meta.label_lower == label)
    return model._meta.db_table


def _plan_nodes(plan):
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def _explain(queryset, *, no_seqscan=True, no_sort=True, bitmap=False) -> list[dict]:
    with transaction.atomic(), connection.cursor() as cursor:
        if no_seqscan:
            cursor.execute("SET LOCAL enable_seqscan = off")
        if bitmap:
            # Only bitmap scans left: each needs an index condition to exist.
            cursor.execute("SET LOCAL enable_indexscan = off")
            cursor.execute("SET LOCAL enable_indexonlyscan = off")
        if no_sort:
            cursor.execute("SET LOCAL enable_sort = off")
        try:
            plan = json.loads(queryset.explain(format="json"))[0]["Plan"]
        finally:
            # A released savepoint would keep SET LOCAL until the test ends.
            cursor.execute(
                "RESET enable_seqscan; RESET enable_sort;"
                " RESET enable_indexscan; RESET enable_indexonlyscan"
            )
    return list(_plan_nodes(plan))


def _assert_indexed(nodes, what):
    kinds = [n["Node Type"] for n in nodes]
    assert not any(n.get("Disabled") for n in nodes), (what, kinds)
    assert "Seq Scan" not in kinds, (what, kinds)
    assert "Sort" not in kinds, (what, kinds)


def test_every_large_table_admin_uses_the_shared_tools():
    registered = {m._meta.label_lower: a for m, a in admin.site._registry.items()}
    for label in LARGE:
        model_admin = registered[label]
        assert isinstance(model_admin, LargeTableAdmin), label
        assert model_admin.paginator is EstimatedCountPaginator, label
        assert model_admin.show_full_result_count is False, label
        assert model_admin.date_hierarchy is None, label


@pytest.mark.django_db
@pytest.mark.parametrize("label", LARGE)
def test_changelist_queries_do_not_grow_with_rows(admin_client, label):
    make = LARGE[label]
    make()
    _get(admin_client, _url(label))  # the session's first request records it
    _, few = _get(admin_client, _url(label))
    for _ in range(12):
        make()
    response, many = _get(admin_client, _url(label))
    assert len(response.context["cl"].result_list) >= 13
    assert len(many) == len(few), "\n".join(many)


@pytest.mark.django_db
@pytest.mark.parametrize("label", LARGE)
def test_unfiltered_changelist_never_counts_the_whole_table(admin_client, label):
    for _ in range(3):
        LARGE[label]()
    table = _table(label)
    _, queries = _get(admin_client, _url(label))
    counts = [q for q in queries if "COUNT(" in q.upper() and f'"{table}"' in q]
    # The estimate statement, whose exact branch is capped: COUNT(*) FROM (… LIMIT).
    assert len(counts) == 1, counts
    assert "pg_class" in counts[0] and "LIMIT 10001" in counts[0]
    assert not any("DISTINCT" in q.upper() and f'"{table}"' in q for q in queries)


@pytest.mark.django_db
@pytest.mark.parametrize("label", LARGE)
def test_every_filter_choice_and_the_ordering_use_an_index(admin_client, label):
    for _ in range(3):
        LARGE[label]()
    url = _url(label)
    response, _ = _get(admin_client, url)
    cl = response.context["cl"]
    _assert_indexed(_explain(cl.result_list), f"{label} unfiltered")
    checked = 0
    for spec in cl.filter_specs:
        for choice in list(spec.choices(cl))[1:]:  # [0] is "All"
            response, queries = _get(admin_client, url + choice["query_string"])
            assert response.context["cl"].result_count >= 0
            _assert_indexed(
                _explain(response.context["cl"].result_list),
                f"{label} {choice['query_string']}",
            )
            counts = [q for q in queries if "COUNT(" in q.upper()]
            assert counts and all("LIMIT 10001" in q for q in counts), counts
            checked += 1
    assert checked or not cl.filter_specs


@pytest.mark.django_db(transaction=True)
def test_estimate_is_used_once_the_table_is_large(admin_client, monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "cap", 5)
    monkeypatch.setattr(EstimatedCountPaginator, "max_rows", 10)
    SearchHistoryFactory.create_batch(30)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE searches_searchhistory")
    response, queries = _get(admin_client, _url("searches.searchhistory"))
    cl = response.context["cl"]
    assert cl.paginator.count_is_estimate
    assert cl.result_count == 30  # the planner's estimate, fresh after ANALYZE
    # Pages stop at max_rows: OFFSET never walks deep into the table.
    assert cl.paginator.num_pages == 1
    assert b"about 30" in response.content
    assert b"about 30 results" in response.content  # next to the search box
    table_counts = [q for q in queries if "COUNT(" in q.upper()]
    assert len(table_counts) == 1 and "pg_class" in table_counts[0]


@pytest.mark.django_db
def test_filtered_list_past_the_cap_reads_the_explain_estimate(
    admin_client, monkeypatch
):
    monkeypatch.setattr(EstimatedCountPaginator, "cap", 5)
    SearchHistoryFactory.create_batch(12, provider="dataforseo")
    SearchHistoryFactory.create_batch(3, provider="sample")
    url = _url("searches.searchhistory") + "?provider=dataforseo"
    _get(admin_client, url)  # the session's first request records it
    response, queries = _get(admin_client, url)
    cl = response.context["cl"]
    assert cl.paginator.count_is_estimate
    assert cl.result_count >= 6
    assert any("LIMIT 6" in q for q in queries if "COUNT(" in q.upper())
    assert any(q.upper().startswith("EXPLAIN (FORMAT JSON)") for q in queries)
    # Below the cap the count is exact.
    url = _url("searches.searchhistory") + "?provider=sample"
    response, below = _get(admin_client, url)
    assert response.context["cl"].result_count == 3
    assert not response.context["cl"].paginator.count_is_estimate
    # The same statements either side of the cap.
    assert len(below) == len(queries)


@pytest.mark.django_db
def test_values_filter_reads_distinct_values_through_the_index(admin_client):
    for metric in ["db.a", "db.b", "db.a", "db.c"]:
        SystemMetricFactory(metric=metric)
    response, queries = _get(admin_client, _url("ops.systemmetric"))
    spec = response.context["cl"].filter_specs[0]
    assert [c["display"] for c in spec.choices(response.context["cl"])][1:] == [
        "db.a",
        "db.b",
        "db.c",
    ]
    assert not any("DISTINCT" in q.upper() for q in queries)
    response = admin_client.get(_url("ops.systemmetric"), {"metric": "db.a"})
    assert len(response.context["cl"].result_list) == 2


def _search_plan(client, label, term, *, force_index=True, bitmap=False):
    # p=1: a term naming one row exactly would otherwise open that row.
    response, _ = _get(client, _url(label) + "?" + urlencode({"q": term, "p": 1}))
    cl = response.context["cl"]
    nodes = _explain(
        cl.queryset.order_by(), no_seqscan=force_index, no_sort=False, bitmap=bitmap
    )
    return cl, nodes


def _assert_searched_by_index(nodes, table, what):
    """The searched table is read only through index conditions: no sequential
    scan, and no full index scan standing in for one."""
    _assert_indexed(nodes, what)
    reads = [n for n in nodes if n.get("Relation Name") == table]
    assert reads, (what, [n["Node Type"] for n in nodes])
    for node in reads:
        if node["Node Type"] == "Bitmap Heap Scan":
            below = list(_plan_nodes(node))
            leaves = [n for n in below if n["Node Type"] == "Bitmap Index Scan"]
            assert leaves and all("Index Cond" in n for n in leaves), (what, node)
        else:
            assert "Index Cond" in node, (what, node)


def _analyze(*tables):
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {table}")


# Tests that ANALYZE are transactional: ANALYZE writes pg_class in place (a
# rollback keeps its numbers), while the TRUNCATE that ends a transactional test
# resets them, so later tests plan against the statistics they expect.
@pytest.fixture
def many_users(transactional_db):
    User.objects.bulk_create(
        User(email=f"bulk{i}@example.com", name=f"Bulk {i}", password="!")
        for i in range(5000)
    )
    _analyze("accounts_user")


def _index_names(nodes) -> set[str]:
    return {n.get("Index Name") for n in nodes}


@pytest.mark.django_db(transaction=True)
def test_user_search_finds_any_part_of_the_email_and_name(admin_client, many_users):
    target = UserFactory(email="zed.middleton@example.com", name="Zed Quinlander")
    _analyze("accounts_user")
    # At 5,000 rows a sequential scan is still cheaper for the planner than a
    # trigram GIN index, so (as for apps below) bitmap scans only: each needs an
    # index condition, which shows the trigram index serves the whole search.
    for term, index in (
        ("dleto", "user_email_trgm_idx"),  # the middle of the email
        ("MIDDLETON@EXAMPLE", "user_email_trgm_idx"),  # any case
        ("inland", "user_name_trgm_idx"),  # the middle of the name
    ):
        cl, nodes = _search_plan(admin_client, "accounts.user", term, bitmap=True)
        assert list(cl.result_list) == [target], term
        _assert_searched_by_index(nodes, "accounts_user", f"user search {term}")
        kinds = {(n["Node Type"], n.get("Index Name")) for n in nodes}
        assert ("Bitmap Index Scan", index) in kinds, (term, kinds)
    # Bulk users are found by a word of their name too.
    cl, _ = _search_plan(admin_client, "accounts.user", "ulk 4999", bitmap=True)
    assert [u.email for u in cl.result_list] == ["bulk4999@example.com"]


@pytest.mark.django_db(transaction=True)
def test_short_user_search_matches_the_start_through_indexes(admin_client, many_users):
    target = UserFactory(email="zq@example.com", name="Zed")
    _analyze("accounts_user")
    response, _ = _get(admin_client, _url("accounts.user") + "?q=zq&p=1")
    assert list(response.context["cl"].result_list) == [target]
    assert b"match only the start" in response.content
    # 'ZQ%': the prefix btrees for email and name, the word-start trigrams of
    # the trigram indexes for the other names; never a pattern with nothing
    # for an index to look up.
    cl, nodes = _search_plan(admin_client, "accounts.user", "zq", bitmap=True)
    _assert_searched_by_index(nodes, "accounts_user", "short user search")
    assert {"user_email_prefix_idx", "user_name_prefix_idx"} <= _index_names(nodes)
    # No letter or digit: only the exact fields search (no pattern at all).
    cl, nodes = _search_plan(admin_client, "accounts.user", "%_", force_index=False)
    assert list(cl.result_list) == []
    _assert_searched_by_index(nodes, "accounts_user", "punctuation user search")
    assert not any("~~" in str(n.get("Index Cond", "")) for n in nodes)


@pytest.mark.django_db(transaction=True)
def test_app_search_uses_trigram_owner_and_key_indexes(admin_client, many_users):
    owner = UserFactory(email="owner@example.com")
    others = list(User.objects.all()[:50])
    App.objects.bulk_create(
        App(name=f"App {i}", description=f"Plain text {i}", owner=others[i % 50])
        for i in range(5000)
    )
    named = AppFactory(name="Rocket Planner")
    owned = AppFactory(owner=owner, name="Other")
    _analyze("apps_catalog_app", "accounts_user")
    # At 5,000 rows a sequential scan is still cheaper for the planner than the
    # trigram GIN index (at 1M apps it picks the index on its own: README), so
    # this checks that the index *can* serve the whole search.
    cl, nodes = _search_plan(admin_client, "apps_catalog.app", "ket plan", bitmap=True)
    assert list(cl.result_list) == [named]
    _assert_searched_by_index(nodes, "apps_catalog_app", "app search")
    assert "app_name_trgm_idx" in {n.get("Index Name") for n in nodes}
    cl, nodes = _search_plan(
        admin_client, "apps_catalog.app", "OWNER@example.com", bitmap=True
    )
    assert list(cl.result_list) == [owned]
    _assert_searched_by_index(nodes, "apps_catalog_app", "app owner search")
    assert "app_owner_created_idx" in {n.get("Index Name") for n in nodes}
    # A word from the middle of a description.
    described = AppFactory(
        name="Ledger", description="Split bills between flatmates, settle monthly."
    )
    _analyze("apps_catalog_app")
    cl, nodes = _search_plan(admin_client, "apps_catalog.app", "flatmate", bitmap=True)
    assert list(cl.result_list) == [described]
    _assert_searched_by_index(nodes, "apps_catalog_app", "app description search")
    kinds = {(n["Node Type"], n.get("Index Name")) for n in nodes}
    assert ("Bitmap Index Scan", "app_description_trgm_idx") in kinds


@pytest.mark.django_db(transaction=True)
def test_requirement_search_finds_any_part_of_the_text(admin_client, many_users):
    apps = App.objects.bulk_create(
        App(name=f"App {i}", owner=owner)
        for i, owner in enumerate(User.objects.all()[:50])
    )
    Requirement.objects.bulk_create(
        Requirement(app=apps[i % 50], description=f"Plain requirement {i}")
        for i in range(5000)
    )
    wanted = RequirementFactory(description="Offline mode syncs when reconnected")
    _analyze("apps_catalog_requirement")
    cl, nodes = _search_plan(
        admin_client, "apps_catalog.requirement", "SYNCS WHEN", bitmap=True
    )
    assert list(cl.result_list) == [wanted]
    _assert_searched_by_index(nodes, "apps_catalog_requirement", "requirement text")
    kinds = {(n["Node Type"], n.get("Index Name")) for n in nodes}
    assert ("Bitmap Index Scan", "requirement_desc_trgm_idx") in kinds


@pytest.mark.django_db(transaction=True)
def test_history_search_uses_the_user_and_primary_key_indexes(
    admin_client, many_users, user
):
    others = list(User.objects.all()[:100])
    SearchHistory.objects.bulk_create(
        SearchHistory(
            user=others[i % 100], keywords=["kw"], keyword_count=1, provider="sample"
        )
        for i in range(5000)
    )
    mine = SearchHistoryFactory(user=user)
    _analyze("searches_searchhistory", "accounts_user")
    for term in (user.email, user.pk, mine.pk):
        cl, nodes = _search_plan(
            admin_client, "searches.searchhistory", term, force_index=False
        )
        assert list(cl.result_list) == [mine]
        _assert_searched_by_index(nodes, "searches_searchhistory", f"history {term}")
        assert {n.get("Index Name") for n in nodes} & {
            "searches_searchhistory_pkey",
            "searchhist_user_time_idx",
        }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("label", "term"),
    [
        ("accounts.magiclink", "link"),
        ("apps_catalog.post", "Post"),
        ("apps_catalog.requirement", "c" * 25),
        ("apps_catalog.monetizationmodel", "c" * 25),
        ("searches.savedsearch", "someone@example.com"),
        ("searches.apiusage", "10.1.2.3"),
        ("billing.webhookevent", "evt_123"),
        ("ops.auditlog", "someone@example.com"),
        ("ops.systemmetric", "db.response_time_ms"),
        ("account.emailaddress", "user"),
        ("socialaccount.socialaccount", "12345"),
        ("usersessions.usersession", "someone@example.com"),
        # Substring searches (trigram indexes) and their short-term fallbacks.
        ("accounts.magiclink", "nk1@exam"),
        ("accounts.magiclink", "li"),
        ("accounts.user", "omeon"),
        ("accounts.user", "%"),
        ("apps_catalog.app", "ab"),
        ("apps_catalog.post", "st ti"),
        ("apps_catalog.post", "Po"),
        ("apps_catalog.requirement", "quirem"),
        ("apps_catalog.requirement", "re"),
        ("searches.savedsearch", "keyword"),
        ("searches.savedsearch", "k"),
        ("billing.webhookevent", "invoice.ty"),
        ("billing.webhookevent", "ev"),
        ("ops.auditlog", "xample.co"),
        ("ops.auditlog", "a"),
        ("ops.auditlog", "%_"),
        ("account.emailaddress", "xampl"),
    ],
)
def test_other_searches_run_on_indexes(admin_client, label, term):
    UserFactory(email="someone@example.com")
    LARGE[label]()
    # Bitmap scans only: each needs an index condition, so the answer does not
    # depend on table statistics other tests left behind (with index scans
    # allowed, a tiny table may get a full index scan with a filter instead).
    _, nodes = _search_plan(admin_client, label, term, bitmap=True)
    _assert_searched_by_index(nodes, _table(label), f"{label} search {term}")


@pytest.mark.django_db
def test_api_usage_search_by_ip_and_audit_search_by_target(admin_client):
    hit = APIUsageFactory(ip_address="10.9.8.7")
    APIUsageFactory(ip_address="10.0.0.1")
    response = admin_client.get(_url("searches.apiusage"), {"q": "10.9.8.7"})
    assert list(response.context["cl"].result_list) == [hit]
    entry = _audit_log()
    _audit_log()
    response = admin_client.get(_url("ops.auditlog"), {"q": entry.target_id})
    assert list(response.context["cl"].result_list) == [entry]
    response = admin_client.get(_url("ops.auditlog"), {"q": entry.actor_email.upper()})
    assert list(response.context["cl"].result_list) == [entry]


@pytest.mark.django_db
def test_foreign_keys_are_never_select_boxes(admin_client):
    """Every foreign key on a change form is raw id, autocomplete or read-only."""
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label_lower
        if label not in LARGE:
            continue
        readonly = set(model_admin.get_readonly_fields(None))
        widgets = set(model_admin.raw_id_fields) | set(model_admin.autocomplete_fields)
        for field in model._meta.get_fields():
            if field.many_to_one and field.concrete and field.editable:
                assert field.name in widgets | readonly, (label, field.name)


@pytest.mark.django_db
def test_user_search_ignores_unknown_email_and_odd_input(admin_client):
    UserFactory.create_batch(2)
    for term in ("nobody@example.com", "%_\\", "' OR 1=1 --", "a" * 300):
        response = admin_client.get(_url("accounts.user"), {"q": term})
        assert response.status_code == 200
        assert list(response.context["cl"].result_list) == []
    assert User.objects.count() == 3
    assert App.objects.count() == 0
    assert SearchHistory.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("label", LARGE)
def test_odd_search_and_paging_input_is_answered_not_a_500(admin_client, label):
    LARGE[label]()
    url = _url(label)
    for params in (
        {"q": "a\x00b"},
        {"q": "x" * 1000},
        {"q": "%"},
        {"p": "999999"},
        {"p": "-1"},
    ):
        response = admin_client.get(url, params)
        assert response.status_code in (200, 302, 400), (label, params)


def _admin_of(label):
    return next(
        (m, a) for m, a in admin.site._registry.items() if m._meta.label_lower == label
    )


def _listing_columns(label):
    model, model_admin = _admin_of(label)
    return listed_columns(
        model, model_admin.list_display, model_admin.list_related_columns, model_admin
    )


# Lists that must not load these columns (the heavy or secret ones).
NOT_LOADED = {
    "accounts.user": {"password"},
    "accounts.magiclink": {"token_hash", "password"},
    "apps_catalog.app": {"description", "password"},
    "apps_catalog.monetizationmodel": {"features", "description"},
    "apps_catalog.post": {"content", "password"},
    "searches.savedsearch": {"results", "keywords", "password"},
    "searches.searchhistory": {"keywords", "user_agent", "password"},
    "searches.apiusage": {"user_agent", "password"},
    "billing.webhookevent": {"payload", "error"},
    "ops.auditlog": {"changes", "user_agent"},
}


def test_the_heavy_lists_are_narrowed():
    assert {label for label in LARGE if _listing_columns(label) is not None} >= set(
        NOT_LOADED
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "label", [label for label in LARGE if _listing_columns(label) is not None]
)
def test_changelist_loads_only_the_columns_it_lists(admin_client, label):
    """The page's row query selects the listed columns, the keys and nothing
    else (no password hash of a joined user, no JSON payload or snapshot)."""
    for _ in range(2):
        LARGE[label]()
    table = _table(label)
    _, queries = _get(admin_client, _url(label))
    (rows_sql,) = [
        q
        for q in queries
        if q.startswith("SELECT") and f'FROM "{table}"' in q and "ORDER BY" in q
    ]
    selected = rows_sql[len("SELECT ") : rows_sql.index(" FROM ")].split(", ")
    names = {column.rsplit(".", 1)[-1].strip('"') for column in selected}
    model, _ = _admin_of(label)
    keys = {"id"} | {f.column for f in model._meta.concrete_fields if f.is_relation}
    listed = {
        name.rsplit("__", 1)[-1] if "__" in name else model._meta.get_field(name).column
        for name in _listing_columns(label)
    }
    assert names <= keys | listed, names - keys - listed
    assert not names & NOT_LOADED.get(label, set())


# -- exact terms open the row --------------------------------------------------


@pytest.mark.django_db
def test_an_exact_id_or_email_opens_the_row(admin_client):
    person = UserFactory(email="Exact.Person@example.com")
    app = AppFactory(name="Exact")
    event = _webhook()
    entry = _audit_log()
    for label, term, obj in (
        ("accounts.user", " exact.person@EXAMPLE.com ", person),
        ("accounts.user", person.pk, person),
        ("apps_catalog.app", app.pk, app),
        ("billing.webhookevent", event.pk, event),
        ("ops.auditlog", entry.pk, entry),
    ):
        with CaptureQueriesContext(connection) as ctx:
            response = admin_client.get(_url(label), {"q": term})
        app_label, model = label.split(".")
        assert response.status_code == 302, (label, term)
        assert response.url == reverse(
            f"admin:{app_label}_{model}_change", args=[quote(obj.pk)]
        )
        # One look-up through the primary key (and the email's unique index).
        lookups = [
            q["sql"]
            for q in ctx.captured_queries
            if _table(label) in q["sql"] and q["sql"].endswith("LIMIT 2")
        ]
        assert len(lookups) == 1, lookups
    # Part of an email lists the matches; a filter or a page keeps the list.
    for params in (
        {"q": "exact.person"},
        {"q": person.email, "role": "USER"},
        {"q": person.email, "p": "1"},
    ):
        response = admin_client.get(_url("accounts.user"), params)
        assert response.status_code == 200, params
        assert list(response.context["cl"].result_list) == [person]


@pytest.mark.django_db
@pytest.mark.parametrize("label", ["accounts.user", "billing.webhookevent"])
@pytest.mark.parametrize("term", ["9" * 30, "-1", "1.5", "1e3", "x" * 300, "a\x00b"])
def test_an_odd_search_term_lists_instead_of_failing(admin_client, label, term):
    UserFactory(email="odd@example.com")
    response = admin_client.get(_url(label), {"q": term})
    # A NUL is refused up front (400); anything else is a list, not a jump.
    assert response.status_code == (400 if "\x00" in term else 200), term


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["9" * 30, "-1", "abc"])
def test_an_odd_related_row_filter_is_no_500(admin_client, value):
    response = admin_client.get(_url("apps_catalog.app"), {"owner__exact": value})
    assert response.status_code in (200, 302), value
    assert "relation_filter" not in (response.context or {})


# -- foreign keys link to their rows -------------------------------------------


def _authenticator():
    from allauth.mfa.models import Authenticator

    return Authenticator.objects.create(
        user=UserFactory(), type=Authenticator.Type.WEBAUTHN, data={"name": "Key"}
    )


def _social_token():
    from allauth.socialaccount.models import SocialToken

    return SocialToken.objects.create(account=_social_account(), token="secret")


# Lists with a foreign key column whose tables stay small (no LargeTableAdmin).
LINKED_SMALL = {
    "mfa.authenticator": _authenticator,
    "socialaccount.socialtoken": _social_token,
}


def _fk_columns(label):
    model, model_admin = _admin_of(label)
    names = []
    for name in model_admin.list_display:
        try:
            field = model._meta.get_field(name)
        except Exception:  # a method column
            continue
        if field.many_to_one:
            names.append(field)
    return names


@pytest.mark.django_db
@pytest.mark.parametrize(
    "label", [*[lb for lb in LARGE if _fk_columns(lb)], *LINKED_SMALL]
)
def test_every_foreign_key_column_links_to_its_row(admin_client, label):
    make = {**LARGE, **LINKED_SMALL}[label]
    make()
    _get(admin_client, _url(label))
    _, few = _get(admin_client, _url(label))
    rows = [make() for _ in range(6)]
    response, many = _get(admin_client, _url(label))
    # The links' text comes with the page's one row query: no query per row.
    assert len(many) == len(few), "\n".join(many)
    html = response.content.decode()
    for row in rows:
        for field in _fk_columns(label):
            key = getattr(row, field.attname)
            if key is None:
                continue
            related = field.related_model._meta
            url = reverse(
                f"admin:{related.app_label}_{related.model_name}_change", args=[key]
            )
            assert f'<a href="{url}"' in html, (label, field.name)


@pytest.mark.django_db
def test_audit_rows_link_actor_and_target_without_a_join(admin_client):
    entry = _audit_log()
    _, queries = _get(admin_client, _url("ops.auditlog"))
    html = _get(admin_client, _url("ops.auditlog"))[0].content.decode()
    user_url = reverse("admin:accounts_user_change", args=[entry.actor_id])
    assert f'<a href="{user_url}" title="{entry.actor_email}">' in html
    rows_sql = [q for q in queries if 'FROM "ops_auditlog"' in q and "ORDER BY" in q]
    assert rows_sql and all("JOIN" not in q for q in rows_sql)


# -- change pages list their relations -----------------------------------------


def _user_world(user, n):
    from allauth.socialaccount.models import SocialAccount

    for _ in range(n):
        i = next(_seq)
        AppFactory(owner=user)
        SavedSearchFactory(user=user)
        SearchHistoryFactory(user=user)
        APIUsageFactory(user=user)
        PostFactory(author=user)
        AuditLogFactory(actor=user, actor_email=user.email)
        UserSession.objects.create(
            user=user, ip="127.0.0.1", session_key=f"k{user.pk}{i}", user_agent="x"
        )
        SocialAccount.objects.create(user=user, provider="github", uid=f"{user.pk}{i}")
        MagicLink.objects.create(
            email=user.email,
            user=user,
            token_hash=hashlib.sha256(f"{user.pk}{i}".encode()).hexdigest(),
            expires_at=timezone.now() + dt.timedelta(minutes=5),
        )


def _panel(response):
    return {entry["label"]: entry for entry in response.context["related_panel"]}


@pytest.mark.django_db
def test_user_page_counts_its_relations_capped_with_constant_queries(
    admin_client, monkeypatch
):
    from core.admin_tools import RelationsMixin

    monkeypatch.setattr(RelationsMixin, "related_cap", 3)
    ada = UserFactory(email="ada@example.com")
    url = reverse("admin:accounts_user_change", args=[ada.pk])
    _user_world(ada, 1)
    _get(admin_client, url)
    response, few = _get(admin_client, url)
    panel = _panel(response)
    assert panel["Apps"]["count_label"] == "1"
    _user_world(ada, 4)
    response, many = _get(admin_client, url)
    assert len(many) == len(few), "\n".join(many)
    panel = _panel(response)
    for label in (
        "Apps",
        "Saved searches",
        "Search history",
        "API usage",
        "Posts",
        "Audit rows (as actor)",
        "User sessions",
        "Social accounts",
        "Magic links",
    ):
        matches = [e for name, e in panel.items() if name.lower() == label.lower()]
        assert matches, (label, list(panel), panel)
        assert matches[0]["count_label"] == "3+", (label, matches[0])
    assert "Authenticators" in panel or "authenticators" in str(panel).lower()
    html = response.content.decode()
    apps_url = reverse("admin:apps_catalog_app_changelist") + f"?owner__exact={ada.pk}"
    assert f'href="{apps_url}"' in html
    assert "3+" in html


def _related_count_sql(queries):
    return [q for q in queries if q.startswith("SELECT COUNT(*) FROM (SELECT")]


@pytest.mark.django_db
@pytest.mark.parametrize("which", ["user", "app"])
def test_related_counts_and_filtered_lists_use_indexes(admin_client, which):
    ada = UserFactory(email="ada@example.com")
    _user_world(ada, 2)
    app = AppFactory(owner=ada, name="Habit Tracker")
    AppFactory(forked_from=app)
    RequirementFactory(app=app)
    MonetizationModelFactory(app=app)
    PostFactory(app=app)
    obj = ada if which == "user" else app
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    response, queries = _get(admin_client, url)
    counts = _related_count_sql(queries)
    assert len(counts) == len(response.context["related_panel"]) >= 4
    for sql in counts:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
            plan = cursor.fetchone()[0]
            cursor.execute("RESET enable_seqscan")
        if isinstance(plan, str):
            plan = json.loads(plan)
        nodes = list(_plan_nodes(plan[0]["Plan"]))
        assert not any(n.get("Disabled") for n in nodes), sql
    # Each link opens the list filtered by this row, titled after it, with
    # breadcrumbs through it, read through an index.
    for entry in response.context["related_panel"]:
        listed, _ = _get(admin_client, entry["url"])
        cl = listed.context["cl"]
        assert cl.result_count == entry["count"], entry
        if isinstance(cl.model_admin, LargeTableAdmin):
            # (Small read-only lists, like two-factor methods, may sort.)
            _assert_indexed(_explain(cl.result_list), entry["url"])
        if "target_type" not in entry["url"]:
            html = listed.content.decode()
            assert f'<a href="{url}">' in html, entry["url"]
            assert (
                f" of {obj}" in listed.context["title"]
                or f": {obj})" in (listed.context["title"])
            ), listed.context["title"]


@pytest.mark.django_db
def test_app_page_lists_forks_requirements_models_and_posts(admin_client):
    app = AppFactory(name="Habit Tracker")
    AppFactory(forked_from=app)
    RequirementFactory.create_batch(2, app=app)
    MonetizationModelFactory(app=app)
    PostFactory(app=app)
    url = reverse("admin:apps_catalog_app_change", args=[app.pk])
    panel = _panel(admin_client.get(url))
    assert panel["Forks"]["count"] == 1
    assert panel["Requirements"]["count"] == 2
    assert panel["Monetization models"]["count"] == 1
    assert panel["Posts"]["count"] == 1
    response = admin_client.get(panel["Forks"]["url"])
    assert response.context["title"] == "Apps (forked from: Habit Tracker)"


@pytest.mark.django_db
def test_a_bad_relation_filter_is_answered_not_a_500(admin_client):
    for params in (
        {"owner__exact": "nobody"},
        {"owner__exact": "\x00"},
        {"owner__email__exact": "x@example.com"},
        {"forked_from__exact": ""},
    ):
        response = admin_client.get(_url("apps_catalog.app"), params)
        assert response.status_code in (200, 302, 400), params
