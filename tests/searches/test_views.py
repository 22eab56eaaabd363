import csv
import datetime as dt
import io
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from searches.models import SavedSearch, SearchHistory
from searches.selectors import history_cursor_encode
from tests.searches.factories import SavedSearchFactory, SearchHistoryFactory

SEARCH = "/search/"


def _post(client, keywords, **extra):
    data = {
        "keywords": keywords,
        "location": "US",
        "language": "en",
        "match_type": "broad",
    }
    data.update(extra)
    return client.post(SEARCH, data)


def _rows(html):
    """(keyword, volume, difficulty, cpc, competition, intent) of each table row."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = []
    for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = [
            re.sub(r"<[^>]+>", "", td)
            for td in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)
        ]
        rows.append([" ".join(c.split()).replace(",", "") for c in cells])
    return rows


# --- search page ---------------------------------------------------------------------


@pytest.mark.django_db
def test_search_page_shows_the_form_and_usage_meter(user_client, user):
    response = user_client.get(SEARCH)
    assert response.status_code == 200
    assert b'name="keywords"' in response.content
    assert b"keywords used this month" in response.content


@pytest.mark.django_db
def test_search_runs_and_shows_results_with_bars_and_sample_badge(user_client, user):
    response = _post(user_client, "seo tools, backlinks")
    assert response.status_code == 302
    page = user_client.get(SEARCH)
    html = page.content.decode()
    assert "Sample data" in html
    assert html.count('class="bar fill-') == 2
    keywords = {row[0] for row in _rows(html)}
    assert keywords == {"seo tools", "backlinks"}
    user.refresh_from_db()
    assert user.keyword_searches_this_month == 2
    assert SearchHistory.objects.filter(user=user).count() == 1


@pytest.mark.django_db
def test_anonymous_visitor_can_search_and_is_recorded(client):
    assert _post(client, "seo tools").status_code == 302
    assert "seo tools" in client.get(SEARCH).content.decode()
    row = SearchHistory.objects.get()
    assert row.user is None
    assert row.ip_address == "127.0.0.1"


@pytest.mark.django_db
def test_behind_a_proxy_the_forwarded_client_is_recorded_and_limited(client, settings):
    """Every visitor behind the load balancer arrives from its address: the
    daily anonymous allowance must count the forwarded client, not the proxy."""
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    settings.KEYWORD_ANON_SEARCHES_PER_DAY = 1

    def search(keywords, forwarded_for):
        data = {"keywords": keywords, "location": "US", "language": "en"}
        return client.post(
            SEARCH, {**data, "match_type": "broad"}, HTTP_X_FORWARDED_FOR=forwarded_for
        )

    assert search("seo tools", "203.0.113.9").status_code == 302
    assert search("backlinks", "198.51.100.7").status_code == 302

    assert set(SearchHistory.objects.values_list("ip_address", flat=True)) == {
        "203.0.113.9",
        "198.51.100.7",
    }
    again = search("seo audit", "203.0.113.9")
    assert "free searches" in again.content.decode()
    assert SearchHistory.objects.count() == 2


@pytest.mark.django_db
def test_anonymous_daily_limit_shows_a_sign_in_message(client, settings):
    settings.KEYWORD_ANON_SEARCHES_PER_DAY = 1
    _post(client, "a")
    response = _post(client, "b")
    assert response.status_code == 200
    assert "free searches" in response.content.decode()
    assert SearchHistory.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ("", "This field is required"),
        (",".join(f"kw {i}" for i in range(201)), "at most 200 keywords"),
        ("x" * 81, "the most is 80"),
        ("seo\x00tools", "Null characters are not allowed"),
        ("seo\x01tools", "control character"),
    ],
)
def test_bad_input_gives_a_form_error_and_writes_nothing(
    user_client, user, keywords, message
):
    response = _post(user_client, keywords)
    assert response.status_code == 200
    assert message in response.content.decode()
    user.refresh_from_db()
    assert user.keyword_searches_this_month == 0
    assert not SearchHistory.objects.exists()


@pytest.mark.django_db
def test_bad_option_gives_a_form_error(user_client):
    response = _post(user_client, "seo", location="XX")
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not SearchHistory.objects.exists()


@pytest.mark.django_db
def test_over_quota_is_refused_with_used_limit_and_reset_date(user_client, user):
    # Billing with and without Stripe: tests/accounts/test_quota_meter.py.
    user.keyword_searches_this_month = 299
    user.monthly_reset_at = timezone.now() + dt.timedelta(days=3)
    user.save()
    response = _post(user_client, "a, b")
    html = response.content.decode()
    assert response.status_code == 200
    assert "used 299 of 300 keywords" in html
    assert f"Your limit resets on {user.monthly_reset_at:%b} " in html
    assert not SearchHistory.objects.exists()


@pytest.mark.django_db
def test_provider_error_shows_a_readable_message_and_uses_no_quota(
    user_client, user, broken_provider
):
    response = _post(user_client, "a, b")
    assert response.status_code == 200
    assert "temporarily unavailable" in response.content.decode()
    user.refresh_from_db()
    assert user.keyword_searches_this_month == 0
    assert not SearchHistory.objects.exists()


@pytest.mark.django_db
def test_provider_timeout_shows_a_readable_message(user_client, user, dataforseo):
    dataforseo.script = [("sleep", 1.0)]
    response = _post(user_client, "a")
    assert "temporarily unavailable" in response.content.decode()
    user.refresh_from_db()
    assert user.keyword_searches_this_month == 0


@pytest.mark.django_db
def test_real_provider_results_carry_no_sample_badge(user_client, dataforseo):
    _post(user_client, "seo tools")
    html = user_client.get(SEARCH).content.decode()
    assert "seo tools" in html
    assert "Sample data" not in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sort",
    [
        "keyword",
        "-keyword",
        "search_volume",
        "-search_volume",
        "difficulty",
        "-cpc",
        "competition",
        "-intent",
    ],
)
def test_results_sort_by_each_column_and_csv_export_matches_the_table(
    user_client, sort
):
    _post(user_client, "seo tools, backlinks, buy links, how to rank, best seo agency")
    html = user_client.get(SEARCH, {"sort": sort}).content.decode()
    table = _rows(html)
    export = user_client.get(reverse("searches:export"), {"sort": sort})
    assert export["Content-Type"].startswith("text/csv")
    assert "sample-data" in export["Content-Disposition"]
    lines = list(csv.reader(io.StringIO(export.content.decode())))
    assert lines[0] == [
        "Keyword",
        "Search volume",
        "Difficulty",
        "CPC (USD)",
        "Competition",
        "Intent",
    ]
    assert lines[1:] == table
    column = {"keyword": 0, "search_volume": 1, "difficulty": 2, "cpc": 3}.get(
        sort.lstrip("-")
    )
    if column is not None:
        cast = str if column == 0 else float
        values = [cast(row[column]) for row in table]
        assert values == sorted(values, reverse=sort.startswith("-"))


@pytest.mark.django_db
def test_export_without_a_search_redirects(client):
    response = client.get(reverse("searches:export"))
    assert response.status_code == 302
    assert response["Location"] == SEARCH


# --- saved searches -----------------------------------------------------------------


@pytest.mark.django_db
def test_save_search_stores_the_shown_results(user_client, user):
    _post(user_client, "seo tools, backlinks")
    response = user_client.post(reverse("searches:save"), {"name": "Link building"})
    saved = SavedSearch.objects.get()
    assert response.status_code == 302
    assert response["Location"] == saved.get_absolute_url()
    assert saved.user == user
    assert saved.name == "Link building"
    assert {r["keyword"] for r in saved.results} == {"seo tools", "backlinks"}


@pytest.mark.django_db
def test_save_with_empty_name_saves_nothing(user_client):
    _post(user_client, "seo tools")
    user_client.post(reverse("searches:save"), {"name": "   "})
    assert not SavedSearch.objects.exists()


@pytest.mark.django_db
def test_anonymous_visitor_cannot_save(client):
    _post(client, "seo tools")
    response = client.post(reverse("searches:save"), {"name": "x"})
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert not SavedSearch.objects.exists()


@pytest.mark.django_db
def test_saved_list_is_ordered_by_last_accessed(user_client, user):
    now = timezone.now()
    SavedSearchFactory(
        user=user, name="Old", last_accessed_at=now - dt.timedelta(days=3)
    )
    SavedSearchFactory(user=user, name="Recent", last_accessed_at=now)
    SavedSearchFactory(
        user=user, name="Middle", last_accessed_at=now - dt.timedelta(days=1)
    )
    SavedSearchFactory(name="Someone else's")
    html = user_client.get(reverse("searches:saved")).content.decode()
    assert html.index("Recent") < html.index("Middle") < html.index("Old")
    assert "Someone else" not in html


@pytest.mark.django_db
def test_opening_a_saved_search_updates_last_accessed_and_shows_the_snapshot(
    user_client, user
):
    saved = SavedSearchFactory(
        user=user, last_accessed_at=timezone.now() - dt.timedelta(days=5)
    )
    before = saved.last_accessed_at
    response = user_client.get(saved.get_absolute_url())
    assert response.status_code == 200
    html = response.content.decode()
    assert "seo tools" in html and "keyword planner" in html
    assert "Sample data" in html
    saved.refresh_from_db()
    assert saved.last_accessed_at > before


@pytest.mark.django_db
def test_saved_search_csv_matches_its_table(user_client, user):
    saved = SavedSearchFactory(user=user, keywords=["a", "b", "c"])
    table = _rows(
        user_client.get(saved.get_absolute_url(), {"sort": "cpc"}).content.decode()
    )
    export = user_client.get(
        reverse("searches:saved_export", args=[saved.pk]), {"sort": "cpc"}
    )
    assert list(csv.reader(io.StringIO(export.content.decode())))[1:] == table


@pytest.mark.django_db
def test_rename_and_delete_a_saved_search(user_client, user):
    saved = SavedSearchFactory(user=user)
    user_client.post(
        reverse("searches:saved_rename", args=[saved.pk]), {"name": "New name"}
    )
    saved.refresh_from_db()
    assert saved.name == "New name"
    user_client.post(reverse("searches:saved_rename", args=[saved.pk]), {"name": ""})
    saved.refresh_from_db()
    assert saved.name == "New name"
    user_client.post(reverse("searches:saved_delete", args=[saved.pk]))
    assert not SavedSearch.objects.exists()


@pytest.mark.django_db
def test_another_users_saved_search_is_404(user_client, other_user):
    saved = SavedSearchFactory(user=other_user, name="Private")
    for url in (
        saved.get_absolute_url(),
        reverse("searches:saved_export", args=[saved.pk]),
    ):
        assert user_client.get(url).status_code == 404
    assert (
        user_client.post(
            reverse("searches:saved_rename", args=[saved.pk]), {"name": "x"}
        ).status_code
        == 404
    )
    assert (
        user_client.post(reverse("searches:saved_delete", args=[saved.pk])).status_code
        == 404
    )
    saved.refresh_from_db()
    assert saved.name == "Private"


@pytest.mark.django_db
def test_saved_pages_require_sign_in(client):
    saved = SavedSearchFactory()
    for url in (
        reverse("searches:saved"),
        saved.get_absolute_url(),
        reverse("searches:history"),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert "/accounts/login/" in response["Location"]


def _queries(client, url, params=None):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return response, [q["sql"] for q in ctx.captured_queries]


def _touching(queries, table):
    return [q for q in queries if f'"{table}"' in q]


@pytest.mark.django_db
def test_saved_list_query_count_does_not_grow(
    user_client, user, django_assert_num_queries
):
    SavedSearchFactory.create_batch(3, user=user)
    url = reverse("searches:saved")
    user_client.get(url)  # first request of the session writes its bookkeeping
    _, few = _queries(user_client, url)
    SavedSearchFactory.create_batch(22, user=user)
    with django_assert_num_queries(len(few)):
        user_client.get(url)
    _, many = _queries(user_client, url)
    # One page count for the user's (small) list and one page of rows.
    assert len(_touching(many, "searches_savedsearch")) == 2


# --- history --------------------------------------------------------------------


def _history(user, n, start=None):
    start = start or timezone.now()
    return SearchHistoryFactory.create_batch(
        n, user=user, searched_at=factory_times(start, n)
    )


def factory_times(start, n):
    import factory

    return factory.Iterator([start - dt.timedelta(minutes=i) for i in range(n)])


@pytest.mark.django_db
def test_history_shows_own_rows_newest_first(user_client, user, other_user):
    now = timezone.now()
    SearchHistoryFactory(
        user=user, keywords=["older one"], searched_at=now - dt.timedelta(hours=2)
    )
    SearchHistoryFactory(user=user, keywords=["newer one"], searched_at=now)
    SearchHistoryFactory(user=other_user, keywords=["not mine"])
    SearchHistoryFactory(user=None, keywords=["anonymous"])
    html = user_client.get(reverse("searches:history")).content.decode()
    assert html.index("newer one") < html.index("older one")
    assert "not mine" not in html and "anonymous" not in html
    assert "Sample data" in html


@pytest.mark.django_db
def test_history_query_count_is_the_same_for_10_and_100_rows(
    user_client, user, django_assert_num_queries
):
    _history(user, 10)
    url = reverse("searches:history")
    user_client.get(url)
    _, ten = _queries(user_client, url)
    _history(user, 90, start=timezone.now() - dt.timedelta(days=1))
    with django_assert_num_queries(len(ten)):
        user_client.get(url)
    response, hundred = _queries(user_client, url)
    history_queries = _touching(hundred, "searches_searchhistory")
    # The page; the per-day chart's GROUP BY ran on the first view and is
    # cached until the next search (selectors.history_chart_counts).
    assert len(history_queries) == 1
    for sql in history_queries:
        assert "COUNT(" not in sql.upper()
        assert "OFFSET" not in sql.upper()
    assert len(response.context["rows"]) == 50
    assert response.context["page"].older_cursor
    # The next page is one query too, however deep.
    _, older = _queries(
        user_client, url, {"before": response.context["page"].older_cursor}
    )
    assert len(older) == len(ten)


@pytest.mark.django_db
def test_history_keyset_pages_walk_every_row_once(user_client, user):
    start = timezone.now()
    # Ties on searched_at are broken by id.
    rows = SearchHistoryFactory.create_batch(60, user=user, searched_at=start)
    rows += _history(user, 60, start=start - dt.timedelta(hours=1))
    seen = []
    url = reverse("searches:history")
    params = {}
    for _ in range(5):
        response = user_client.get(url, params)
        seen += [row["id"] for row in response.context["rows"]]
        if not response.context["page"].older_cursor:
            break
        params = {"before": response.context["page"].older_cursor}
    assert len(seen) == 120
    assert set(seen) == {row.pk for row in rows}
    ordered = sorted(rows, key=lambda r: (r.searched_at, r.pk), reverse=True)
    assert seen == [row.pk for row in ordered]


@pytest.mark.django_db
def test_history_ignores_a_malformed_cursor(user_client, user):
    row = SearchHistoryFactory(user=user)
    for cursor in (
        "garbage",  # not UTF-8
        "%%%",
        "x" * 500,
        "w6k",  # "é": no separator
        "OTk5OTk5OTk5OTk5OTk5OTk5OTk5OmFi",  # a timestamp past year 9999
    ):
        response = user_client.get(reverse("searches:history"), {"cursor": cursor})
        assert response.status_code == 200
        # Treated as no cursor: the first page.
        assert [r["id"] for r in response.context["rows"]] == [row.pk]
    # "1:1", well formed: a position before every row, so an empty page.
    response = user_client.get(reverse("searches:history"), {"cursor": "MTox"})
    assert response.status_code == 200
    assert response.context["rows"] == []
    assert "No searches on this page." in response.content.decode()


@pytest.mark.django_db
def test_history_cursor_of_another_user_reveals_nothing(user_client, other_user):
    theirs = SearchHistoryFactory(user=other_user)
    response = user_client.get(
        reverse("searches:history"),
        {"cursor": history_cursor_encode(theirs.searched_at, theirs.pk)},
    )
    assert response.context["rows"] == []


@pytest.mark.django_db
def test_history_detail_is_own_only(user_client, user, other_user):
    mine = SearchHistoryFactory(user=user, keywords=["my keyword"])
    theirs = SearchHistoryFactory(user=other_user)
    response = user_client.get(mine.get_absolute_url())
    assert response.status_code == 200
    assert "my keyword" in response.content.decode()
    assert user_client.get(theirs.get_absolute_url()).status_code == 404
    anonymous = SearchHistoryFactory(user=None)
    assert user_client.get(anonymous.get_absolute_url()).status_code == 404


@pytest.mark.django_db
def test_search_posts_need_a_csrf_token(user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert _post(client, "seo").status_code == 403
    saved = SavedSearchFactory(user=user)
    assert (
        client.post(reverse("searches:saved_delete", args=[saved.pk])).status_code
        == 403
    )
    assert SavedSearch.objects.exists()


@pytest.mark.django_db
def test_usage_meter_offers_an_upgrade_only_near_the_limit(user_client, user, settings):
    # A paid plan can be bought (accounts.selectors.upgrades_available).
    settings.STRIPE_SECRET_KEY = "sk_test_x"
    settings.STRIPE_PRICE_PRO = "price_pro"
    settings.STRIPE_PRICE_ENTERPRISE = "price_ent"
    user.monthly_reset_at = timezone.now() + dt.timedelta(days=3)
    user.keyword_searches_this_month = 10
    user.save()
    assert "Upgrade for more" not in user_client.get(SEARCH).content.decode()
    user.keyword_searches_this_month = 290
    user.save()
    html = user_client.get(SEARCH).content.decode()
    assert "290</strong> of 300 keywords used this month" in html
    assert "Upgrade for more" in html


@pytest.mark.django_db
def test_usage_meter_shows_zero_once_the_reset_date_passed(user_client, user):
    user.monthly_reset_at = timezone.now() - dt.timedelta(hours=1)
    user.keyword_searches_this_month = 300
    user.save()
    assert "0</strong> of 300" in user_client.get(SEARCH).content.decode()


@pytest.mark.django_db
def test_search_again_prefills_the_form(user_client):
    html = user_client.get(
        SEARCH, {"keywords": "seo tools\nbacklinks"}
    ).content.decode()
    assert "seo tools\nbacklinks</textarea>" in html
