"""History readable at a glance: keywords first, paging both ways on the keyset
cursor, no developer columns, and the keywords-per-day chart."""

import datetime as dt
import re
import zoneinfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from searches.charts import daily_bar_chart
from searches.selectors import history_keywords_per_day
from tests.searches.factories import SearchHistoryFactory
from tests.searches.plans import history_competitors_drop

URL = "/search/history/"
TODAY = dt.date(2026, 11, 30)


def _history(user, n, *, start=None, step=dt.timedelta(minutes=7)):
    start = start or timezone.now()
    return [
        SearchHistoryFactory(
            user=user,
            keywords=[f"kw{i}"],
            keyword_count=1,
            searched_at=start - step * i,
        )
        for i in range(n)
    ]


def _ids(response):
    return [row["id"] for row in response.context["rows"]]


def _header_texts(html):
    thead = html.split("<thead>", 1)[1].split("</thead>", 1)[0]
    return [
        re.sub(r"<[^>]+>", "", th).strip() for th in re.findall(r"<th.*?</th>", thead)
    ]


# --- the table --------------------------------------------------------------------


@pytest.mark.django_db
def test_keywords_come_first_and_no_developer_columns(user_client, user):
    SearchHistoryFactory(user=user, response_time_ms=904, cache_hit=True)

    html = user_client.get(URL).content.decode()

    headers = _header_texts(html)
    assert headers[0] == "Keywords"
    assert headers == [
        "Keywords",
        "When",
        "Count",
        "Avg volume",
        "Total volume",
        "Data",
    ]
    assert "904" not in html and " ms" not in html
    assert "cached" not in html
    assert "Sample data" in html


@pytest.mark.django_db
def test_long_keyword_lists_are_cut_and_the_row_links_to_the_full_list(
    user_client, user
):
    keywords = [f"keyword number {i}" for i in range(12)]
    row = SearchHistoryFactory(user=user, keywords=keywords, keyword_count=12)

    html = user_client.get(URL).content.decode()
    cell = re.search(r'<td class="history-keywords">(.*?)</td>', html, re.S).group(1)
    visible = re.sub(r"<[^>]+>", "", cell)

    assert "keyword number 4" in visible and "keyword number 5" not in visible
    assert "… and 7 more" in visible
    assert f'href="{row.get_absolute_url()}"' in cell
    detail = user_client.get(row.get_absolute_url()).content.decode()
    assert all(k in detail for k in keywords)
    assert " ms" not in detail


# --- paging both ways -------------------------------------------------------------


@pytest.mark.django_db
def test_older_then_newer_returns_exactly_the_first_page(user_client, user):
    _history(user, 120)
    first = user_client.get(URL)
    assert first.context["page"].newer_cursor is None
    assert "← Newer" not in first.content.decode()

    older = user_client.get(URL, {"before": first.context["page"].older_cursor})
    html = older.content.decode()
    assert "← Newer" in html and "Newest" in html and "Older →" in html
    oldest = user_client.get(URL, {"before": older.context["page"].older_cursor})
    assert len(_ids(oldest)) == 20
    assert oldest.context["page"].older_cursor is None

    back = user_client.get(URL, {"after": oldest.context["page"].newer_cursor})
    assert _ids(back) == _ids(older)
    top = user_client.get(URL, {"after": back.context["page"].newer_cursor})
    assert _ids(top) == _ids(first)
    assert top.context["page"].newer_cursor is None
    assert len(set(_ids(first) + _ids(older) + _ids(oldest))) == 120


@pytest.mark.django_db
def test_newer_paging_breaks_ties_on_the_same_instant_by_id(user_client, user):
    moment = timezone.now()
    rows = SearchHistoryFactory.create_batch(75, user=user, searched_at=moment)
    first = user_client.get(URL)
    second = user_client.get(URL, {"before": first.context["page"].older_cursor})
    back = user_client.get(URL, {"after": second.context["page"].newer_cursor})

    assert _ids(back) == _ids(first)
    assert set(_ids(first) + _ids(second)) == {r.pk for r in rows}


@pytest.mark.django_db
def test_a_newer_page_short_of_rows_shows_the_newest_page(user_client, user):
    rows = _history(user, 60)
    # A cursor just below the newest row: only one newer row exists.
    from searches.selectors import history_cursor_encode

    cursor = history_cursor_encode(rows[1].searched_at, rows[1].pk)
    response = user_client.get(URL, {"after": cursor})

    assert _ids(response) == [r.pk for r in rows[:50]]
    assert response.context["page"].newer_cursor is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params",
    [
        {"before": "garbage"},
        {"after": "garbage"},
        {"before": "%%%"},
        {"after": "x" * 500},
        {"after": "OTk5OTk5OTk5OTk5OTk5OTk5OTk5OmFi"},  # past year 9999
        {"before": "w6k"},
        {"after": "MTpfXy8u"},  # "1:__/." : the id is not alphanumeric
        {"cursor": "garbage"},
    ],
)
def test_garbage_cursors_show_the_newest_page_with_a_message(user_client, user, params):
    rows = _history(user, 3)

    response = user_client.get(URL, params)

    assert response.status_code == 200
    assert _ids(response) == [r.pk for r in rows]
    assert "That page link is not valid" in response.content.decode()


@pytest.mark.django_db
def test_the_old_cursor_parameter_still_pages_older(user_client, user):
    _history(user, 60)
    first = user_client.get(URL)

    older = user_client.get(URL, {"cursor": first.context["page"].older_cursor})

    assert len(_ids(older)) == 10


@pytest.mark.django_db
@pytest.mark.parametrize("direction", ["first", "before", "after"])
def test_every_page_costs_the_same_queries_however_many_rows(
    user_client, user, direction, django_assert_num_queries
):
    def cursor_params():
        page = user_client.get(URL).context["page"]
        if direction == "first":
            return {}
        older = user_client.get(URL, {"before": page.older_cursor}).context["page"]
        return (
            {"before": page.older_cursor}
            if direction == "before"
            else {"after": older.newer_cursor}
        )

    _history(user, 110)
    params = cursor_params()
    with CaptureQueriesContext(connection) as few:
        user_client.get(URL, params)
    # Read now: the next request empties the connection's query log.
    expected = len(few.captured_queries)
    _history(user, 300, start=timezone.now() - dt.timedelta(days=3))
    params = cursor_params()
    with django_assert_num_queries(expected) as many:
        response = user_client.get(URL, params)
    assert len(_ids(response)) == 50
    history = [q["sql"] for q in many.captured_queries if "searchhistory" in q["sql"]]
    # One for the page, and on a page below the newest one GROUP BY for the
    # chart (the newest page has it from the cache: the newest search keys
    # it); no COUNT, no OFFSET.
    assert len(history) == (1 if direction == "first" else 2)
    assert not any(
        "COUNT(" in sql.upper() or "OFFSET" in sql.upper() for sql in history
    )


# --- the chart --------------------------------------------------------------------


def test_chart_of_an_empty_history_has_thirty_empty_days():
    chart = daily_bar_chart({}, today=TODAY)

    assert len(chart.bars) == 30
    assert all(b.height == 0 for b in chart.bars)
    assert (chart.total, chart.peak, chart.busiest) == (0, 0, None)
    assert chart.summary == "Keywords searched per day, last 30 days: none yet"
    assert (chart.first_label, chart.last_label) == ("Nov 1", "Today")


def test_chart_of_one_day_fills_the_plot_on_that_day_only():
    chart = daily_bar_chart({dt.date(2026, 11, 20): 40}, today=TODAY)

    tall = [b for b in chart.bars if b.height]
    assert [b.day for b in tall] == [dt.date(2026, 11, 20)]
    assert tall[0].y == chart.plot_top
    assert tall[0].y + tall[0].height == chart.baseline
    assert chart.summary == (
        "Keywords searched per day, last 30 days: 40 in total, busiest Nov 20 (40)"
    )
    assert tall[0].label == "Nov 20: 40 keywords"


def test_chart_of_thirty_days_orders_scales_and_ignores_days_outside():
    counts = {TODAY - dt.timedelta(days=i): i + 1 for i in range(30)}
    counts[TODAY - dt.timedelta(days=30)] = 1000  # a day too old
    counts[TODAY + dt.timedelta(days=1)] = 1000  # tomorrow

    chart = daily_bar_chart(counts, today=TODAY)

    assert chart.bars[0].day == TODAY - dt.timedelta(days=29)
    assert chart.bars[-1].day == TODAY
    assert [b.count for b in chart.bars] == list(range(30, 0, -1))
    assert chart.total == sum(range(1, 31)) and chart.peak == 30
    assert chart.busiest == TODAY - dt.timedelta(days=29)
    heights = [b.height for b in chart.bars]
    assert heights == sorted(heights, reverse=True)
    assert all(b.x >= 0 and b.x + b.width <= 100 for b in chart.bars)
    assert chart.bars[1].x > chart.bars[0].x + chart.bars[0].width


@pytest.mark.django_db
def test_days_are_counted_in_the_current_time_zone(user, settings):
    settings.TIME_ZONE = "America/New_York"
    new_york = zoneinfo.ZoneInfo("America/New_York")
    now = dt.datetime(2026, 11, 30, 12, 0, tzinfo=new_york)
    # 03:00 UTC on Nov 20 is still Nov 19 in New York.
    SearchHistoryFactory(
        user=user,
        keyword_count=3,
        keywords=["a", "b", "c"],
        searched_at=dt.datetime(2026, 11, 20, 3, 0, tzinfo=dt.UTC),
    )
    # Local midnight 29 days back is inside the window; a minute before is not.
    start = dt.datetime(2026, 11, 1, 0, 0, tzinfo=new_york)
    SearchHistoryFactory(user=user, searched_at=start, keyword_count=1, keywords=["x"])
    SearchHistoryFactory(
        user=user,
        searched_at=start - dt.timedelta(minutes=1),
        keyword_count=1,
        keywords=["y"],
    )
    SearchHistoryFactory(keyword_count=5, searched_at=now)  # someone else's

    with timezone.override(new_york):
        counts, today = history_keywords_per_day(user=user, now=now)

    assert today == dt.date(2026, 11, 30)
    assert counts == {dt.date(2026, 11, 19): 3, dt.date(2026, 11, 1): 1}


@pytest.mark.django_db
def test_history_page_draws_the_chart_with_an_accessible_name(user_client, user):
    now = timezone.now()
    SearchHistoryFactory(
        user=user, keywords=["a", "b"], keyword_count=2, searched_at=now
    )

    html = user_client.get(URL).content.decode()

    svg = re.search(r'<svg role="img".*?</svg>', html, re.S).group(0)
    assert 'role="img"' in svg and 'aria-labelledby="day-chart-title"' in svg
    assert (
        '<title id="day-chart-title">Keywords searched per day, last 30 days: '
        f"2 in total, busiest {now:%b} {timezone.localdate(now).day} (2)</title>"
    ) in svg
    assert svg.count('class="chart-bar"') == 1
    assert "style=" not in svg
    assert "Today" in svg


def _plans_of(callable_):
    """EXPLAIN of every query ``callable_`` runs, with sequential scans and
    sorts discouraged: whether an index can serve it at all, whatever the
    statistics of a near-empty test table."""
    with CaptureQueriesContext(connection) as ctx:
        callable_()
    plans = []
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        history_competitors_drop(cursor)
        for query in ctx.captured_queries:
            cursor.execute("EXPLAIN " + query["sql"])
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    return plans


@pytest.mark.django_db
def test_newer_pages_walk_the_history_index_backwards_without_a_sort(user):
    from searches.selectors import history_cursor_encode, history_page

    rows = _history(user, 5)
    cursor = history_cursor_encode(rows[-1].searched_at, rows[-1].pk)

    (plan,) = _plans_of(lambda: history_page(user=user, after=cursor, size=2))

    assert "searchhist_user_time_idx" in plan
    assert "Sort" not in plan


@pytest.mark.django_db
def test_the_chart_reads_only_the_last_days_along_the_history_index(user):
    _history(user, 5)

    (plan,) = _plans_of(lambda: history_keywords_per_day(user=user))

    assert "searchhist_user_time_idx" in plan
    assert "Seq Scan" not in plan
    # keyword_count is in the index (INCLUDE): no heap page per search.
    assert "Index Only Scan" in plan


@pytest.mark.django_db
def test_the_chart_is_summed_once_until_the_next_search(user_client, user):
    _history(user, 3)

    def chart_sums():
        with CaptureQueriesContext(connection) as ctx:
            response = user_client.get(URL)
        sums = [
            q
            for q in ctx.captured_queries
            if 'SUM("searches_searchhistory"' in q["sql"]
        ]
        return len(sums), response.context["chart"].total

    assert chart_sums() == (1, 3)  # computed, then cached
    assert chart_sums() == (0, 3)  # from the cache: no scan of the 30 days
    SearchHistoryFactory(user=user, keywords=["new", "one"], keyword_count=2)
    assert chart_sums() == (1, 5)  # a new search is a new key


@pytest.mark.django_db
def test_a_row_drawn_by_its_tag_escapes_what_the_user_typed(user_client, user):
    SearchHistoryFactory(
        user=user, keywords=['<img src=x onerror="alert(1)">', "a&b"], keyword_count=2
    )

    html = user_client.get(URL).content.decode()

    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;, a&amp;b" in html


@pytest.mark.django_db
def test_the_chart_is_summed_when_the_cache_is_down(user_client, user, monkeypatch):
    from django.core.cache import cache

    def down(*args, **kwargs):
        raise ConnectionError("cache is down")

    _history(user, 3)
    monkeypatch.setattr(cache, "get", down)
    monkeypatch.setattr(cache, "set", down)

    response = user_client.get(URL)

    assert response.status_code == 200
    assert response.context["chart"].total == 3
