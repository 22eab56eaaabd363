"""The dashboard's charts (recorded metrics drawn server-side as inline SVG),
the jobs that record searches and sign-ups per day, and the replication tab."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import tasks as account_tasks
from core import charts, monitoring, replica
from core.models import SystemMetric
from core.services import health_metrics_record, metric_daily_counts_record
from searches import tasks as search_tasks
from searches.models import SearchHistory
from tests.accounts.factories import UserFactory
from tests.jobs import periodic_of
from tests.searches.factories import SearchHistoryFactory

OVERVIEW = reverse("admin:ops_databasedashboard_changelist") + "?tab=overview"
REPLICATION = reverse("admin:ops_databasedashboard_changelist") + "?tab=replication"
UTC = dt.UTC


def chart_html(html: str, slug: str) -> str:
    return html.split(f'id="chart-{slug}"', 1)[1].split("</figure>", 1)[0]


def record_metrics(now: dt.datetime, hours: int = 30) -> None:
    rows = []
    for hour in range(hours):
        at = now - dt.timedelta(hours=hour, minutes=5)
        rows.append(
            SystemMetric(metric="db.response_time_ms", value=1 + hour % 4, timestamp=at)
        )
        rows.append(
            SystemMetric(metric="db.connections", value=3 + hour % 3, timestamp=at)
        )
        rows.append(
            SystemMetric(
                metric="db.replica_lag_seconds", value=(hour % 5) * 0.7, timestamp=at
            )
        )
    today = now.date()
    for day in range(10):
        midnight = dt.datetime.combine(today - dt.timedelta(days=day), dt.time.min, UTC)
        rows.append(
            SystemMetric(metric="searches.per_day", value=100 + day, timestamp=midnight)
        )
        rows.append(
            SystemMetric(
                metric="accounts.signups_per_day", value=day, timestamp=midnight
            )
        )
    SystemMetric.objects.bulk_create(rows)


@pytest.mark.django_db
def test_charts_draw_the_recorded_metrics_as_accessible_inline_svg(admin_client):
    record_metrics(timezone.now())

    html = admin_client.get(OVERVIEW).content.decode()

    for slug in ("response-time", "connections"):
        chart = chart_html(html, slug)
        assert '<polyline class="chart-line" points="' in chart
        assert 'role="img"' in chart
        assert f'aria-labelledby="chart-{slug}-title"' in chart
        assert f'<title id="chart-{slug}-title">' in chart
        assert "measurements, lowest" in chart
    response = chart_html(html, "response-time")
    assert "highest 4 ms" in response
    for slug, peak in (("searches", "109"), ("signups", "9")):
        chart = chart_html(html, slug)
        assert chart.count('<rect class="chart-bar"') == 10
        assert "busiest" in chart
        assert f">{peak}<" in chart  # the y axis label
        assert "<title>" in chart  # a tooltip per bar
    assert "<script" not in html.split('id="charts"', 1)[1].split("</section>", 1)[0]


@pytest.mark.django_db
def test_charts_say_so_when_nothing_was_recorded(admin_client):
    html = admin_client.get(OVERVIEW).content.decode()

    for slug in ("response-time", "connections"):
        chart = chart_html(html, slug)
        assert "no measurements recorded from" in chart
        assert "<svg" not in chart
    for slug in ("searches", "signups"):
        assert "nothing recorded yet for the last 30 days" in chart_html(html, slug)


@pytest.mark.django_db
def test_more_metric_rows_do_not_add_queries(admin_client):
    admin_client.get(OVERVIEW)
    with CaptureQueriesContext(connection) as empty:
        admin_client.get(OVERVIEW)
    record_metrics(timezone.now(), hours=7 * 24)
    with CaptureQueriesContext(connection) as full:
        admin_client.get(OVERVIEW)

    assert len(full) == len(empty)


def test_line_chart_places_points_by_time_inside_the_plot():
    start = dt.datetime(2026, 1, 1, tzinfo=UTC)
    end = start + dt.timedelta(hours=10)
    series = [(start, 0.0), (start + dt.timedelta(hours=5), 5.0), (end, 10.0)]

    chart = charts.line_chart("x", "Response", "ms", series, start=start, end=end)

    assert chart.points == "0.0,40.0 50.0,20.0 100.0,0.0"
    assert chart.y_max_label == "10 ms"
    assert not chart.empty


def test_daily_bar_chart_leaves_unrecorded_days_without_a_bar():
    today = dt.date(2026, 3, 31)
    chart = charts.daily_bar_chart(
        "s", "Searches per day", "searches", {today: 4, dt.date(2026, 3, 30): 2},
        today=today, days=30,
    )  # fmt: skip

    assert len(chart.bars) == 2
    assert chart.bars[-1].height == 40.0
    assert chart.bars[0].height == 20.0
    assert "6 searches on 2 recorded days, busiest Mar 31 (4)" in chart.summary


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, UTC)


@pytest.mark.django_db
def test_daily_counts_are_recorded_once_per_finished_day_and_today_is_recounted():
    now = dt.datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    for days_ago, count in ((0, 2), (1, 3), (5, 1)):
        for _ in range(count):
            SearchHistoryFactory(
                searched_at=now - dt.timedelta(days=days_ago, hours=1), user=None
            )
    queryset = SearchHistory.objects.all()

    written = metric_daily_counts_record(
        metric="t.per_day", queryset=queryset, field="searched_at", days=7, now=now
    )

    assert written == 7
    values = dict(
        SystemMetric.objects.filter(metric="t.per_day").values_list(
            "timestamp", "value"
        )
    )
    assert values[midnight(now.date())] == 2
    assert values[midnight(now.date() - dt.timedelta(days=1))] == 3
    assert values[midnight(now.date() - dt.timedelta(days=5))] == 1
    assert values[midnight(now.date() - dt.timedelta(days=2))] == 0

    # An hour later: only today is counted again (finished days are kept).
    SearchHistoryFactory(searched_at=now, user=None)
    SearchHistoryFactory(searched_at=now - dt.timedelta(days=1), user=None)
    later = now + dt.timedelta(hours=1)
    assert (
        metric_daily_counts_record(
            metric="t.per_day",
            queryset=queryset,
            field="searched_at",
            days=7,
            now=later,
        )
        == 1
    )
    values = dict(
        SystemMetric.objects.filter(metric="t.per_day").values_list(
            "timestamp", "value"
        )
    )
    assert len(values) == 7
    assert values[midnight(now.date())] == 3
    assert values[midnight(now.date() - dt.timedelta(days=1))] == 3


@pytest.mark.django_db
def test_the_apps_jobs_record_searches_and_sign_ups_per_day(admin_client):
    UserFactory.create_batch(3)
    SearchHistoryFactory.create_batch(4, user=None)

    assert search_tasks.searches_per_day_record(timestamp=0) == 30
    assert account_tasks.signups_per_day_record(timestamp=0) == 30

    today = midnight(timezone.now().date())
    assert (
        SystemMetric.objects.get(metric="searches.per_day", timestamp=today).value == 4
    )
    signups = SystemMetric.objects.get(
        metric="accounts.signups_per_day", timestamp=today
    )
    assert signups.value >= 3  # the admin too
    html = admin_client.get(OVERVIEW).content.decode()
    assert "Searches per day, last 30 days" in chart_html(html, "searches")
    assert '<rect class="chart-bar"' in chart_html(html, "signups")


@pytest.mark.parametrize(
    ("task", "cron"),
    [
        (search_tasks.searches_per_day_record, "50 * * * *"),
        (account_tasks.signups_per_day_record, "55 * * * *"),
    ],
    ids=lambda value: getattr(value, "name", None),
)
def test_daily_metric_jobs_are_scheduled_hourly(task, cron):
    periodic = periodic_of(task)
    assert periodic.cron == cron
    assert task.queue == "maintenance"
    assert task.queueing_lock == task.name


# --- Replication tab ----------------------------------------------------------------


@pytest.mark.django_db
def test_replication_tab_without_a_replica_says_reads_go_to_the_primary(admin_client):
    html = admin_client.get(f"{REPLICATION}").content.decode()

    section = html.split('id="replication"', 1)[1].split("</section>", 1)[0]
    assert "the <strong>primary</strong>" in section
    assert "No read replica is configured" in section
    assert "No standby is streaming from this server." in section
    # The embedded test server archives its WAL, and archiving works.
    archiving = section.split('id="wal-archiving"', 1)[1].split("</div>\n  </div>")[0]
    assert "<strong>working</strong> archive command" in archiving


@pytest.mark.django_db
def test_replication_tab_shows_the_configured_replicas_lag(admin_client, monkeypatch):
    # The primary itself stands in for the replica alias: it answers the same
    # functions (and is not in recovery, which the page says).
    monkeypatch.setattr(replica, "replica_configured", lambda: True)
    monkeypatch.setattr(replica, "REPLICA_ALIAS", "default")

    report = monitoring.replication_report()
    html = admin_client.get(REPLICATION).content.decode()

    assert report.replica is not None and report.replica_note == ""
    assert report.replica["in_recovery"] is False
    section = html.split('id="replica-lag"', 1)[1].split("</div>\n  </div>", 1)[0]
    assert "of WAL not yet replayed" in section
    assert "not in recovery" in section


@pytest.mark.django_db
def test_an_unreachable_replica_is_a_note_not_an_error(admin_client, monkeypatch):
    class Broken:
        def cursor(self):
            raise OperationalError("connection refused")

        def close_if_unusable_or_obsolete(self):
            pass

    real = monitoring.connections

    class Connections:
        def __getitem__(self, alias):
            return Broken() if alias == "replica" else real[alias]

        def __getattr__(self, name):
            return getattr(real, name)

    monkeypatch.setattr(replica, "replica_configured", lambda: True)
    monkeypatch.setattr(monitoring, "connections", Connections())

    response = admin_client.get(REPLICATION)

    assert response.status_code == 200
    assert "The replica (replica) cannot be read: connection refused" in (
        response.content.decode()
    )


@pytest.mark.django_db
def test_replication_tab_charts_the_replicas_worst_lag_of_each_hour(
    admin_client, monkeypatch
):
    now = timezone.now()
    hour = (now - dt.timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    SystemMetric.objects.bulk_create(
        SystemMetric(metric="db.replica_lag_seconds", value=value, timestamp=at)
        for value, at in [
            (0.2, hour + dt.timedelta(minutes=10)),
            (7.5, hour + dt.timedelta(minutes=15)),
            (0.1, now - dt.timedelta(seconds=5)),
        ]
    )
    assert (
        'id="chart-replica-lag"' not in admin_client.get(REPLICATION).content.decode()
    )

    monkeypatch.setattr(replica, "replica_configured", lambda: True)
    monkeypatch.setattr(replica, "REPLICA_ALIAS", "default")
    html = admin_client.get(REPLICATION).content.decode()

    chart = chart_html(html, "replica-lag")
    assert '<polyline class="chart-line" points="' in chart
    # The worst of the hour, not its average (3.85 s).
    assert "2 measurements, lowest 0.1 s, highest 7.5 s, latest 0.1 s" in chart


@pytest.mark.django_db
def test_a_replica_that_answered_has_its_lag_recorded():
    database = {"response_time_ms": 1.2, "connections": {"used": 3}}
    answered = {"connected": True, "lag_seconds": 2.5, "lag_bytes": 100}

    rows = health_metrics_record(database=database, source="t", replica=answered)
    assert [(r.metric, r.value) for r in rows][-1] == ("db.replica_lag_seconds", 2.5)

    unreachable = {"connected": False, "error": "OperationalError"}
    rows = health_metrics_record(database=database, source="t", replica=unreachable)
    assert "db.replica_lag_seconds" not in {r.metric for r in rows}
