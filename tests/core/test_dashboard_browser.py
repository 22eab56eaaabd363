"""Every dashboard tab in a real browser at 1366 by 900 and on a tablet: no
horizontal overflow, no axe violation, in both themes, with running queries,
a blocked session and charts on screen."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from core import replica
from tests.a11y import axe_violations, horizontal_overflow, widest_elements
from tests.core.test_dashboard_charts import record_metrics
from tests.core.test_dashboard_queries import Session, activity, connect, wait_for
from tests.e2e import screenshot, sign_in_browser

TABS = ("overview", "queries", "tables", "replication")
SIZES = ({"width": 1366, "height": 900}, {"width": 820, "height": 1180})


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_every_tab_fits_and_passes_axe(live_url, page, admin_user, monkeypatch):
    record_metrics(timezone.now())
    # A read replica, so the replication tab shows its lag and chart: the
    # primary stands in for it (the live server runs in this process).
    monkeypatch.setattr(replica, "replica_configured", lambda: True)
    monkeypatch.setattr(replica, "REPLICA_ALIAS", "default")
    observer = connect(application_name="dash-browser-observer")
    # A long query with a long text, so the Queries tab has rows to fit.
    long_sql = "SELECT pg_sleep(60), '" + "a very long literal " * 30 + "' AS padding"
    sleeper = Session(long_sql, application="dash-browser-sleeper-with-a-long-name")
    wait_for(lambda: (activity(observer, sleeper.pid) or ("",))[0] == "active")
    sign_in_browser(page, live_url, admin_user)
    dashboard = reverse("admin:ops_databasedashboard_changelist")
    problems = []
    try:
        for theme in ("light", "dark"):
            page.context.add_cookies(
                [{"name": "theme", "value": theme, "url": live_url}]
            )
            # The admin follows the system's scheme (its own toggle is stored
            # in the browser, not the site's cookie).
            page.emulate_media(color_scheme=theme)
            for size in SIZES:
                page.set_viewport_size(size)
                for tab in TABS:
                    where = f"{tab} @{size['width']}px {theme}"
                    response = page.goto(f"{live_url}{dashboard}?tab={tab}")
                    assert response is not None and response.status == 200, where
                    overflow = horizontal_overflow(page)
                    if overflow:
                        problems.append(
                            f"{where}: {overflow}px too wide "
                            f"({'; '.join(widest_elements(page))})"
                        )
                    problems.extend(f"{where}: {v}" for v in axe_violations(page))
                    screenshot(page, f"dashboard-{tab}-{size['width']}-{theme}")
        # The tabs work without script: a link to each, the current one marked.
        page.set_viewport_size(SIZES[0])
        page.goto(f"{live_url}{dashboard}")
        page.click("nav.dashboard-tabs >> text=Queries")
        assert page.url.endswith("?tab=queries")
        assert page.locator(f"#backend-{sleeper.pid}").count() == 1
        assert (
            page.locator("nav.dashboard-tabs [aria-current=page]").inner_text()
            == "Queries"
        )
        # The charts are drawn and named.
        page.goto(f"{live_url}{dashboard}?tab=overview")
        assert page.locator("svg.chart-plot[role=img]").count() == 4
        box = page.locator("#chart-response-time svg").bounding_box()
        assert box["width"] > 200 and box["height"] > 100
        page.goto(f"{live_url}{dashboard}?tab=replication")
        assert page.locator("#chart-replica-lag svg.chart-plot[role=img]").count() == 1
    finally:
        sleeper.close()
        observer.close()
    assert not problems, "\n".join(problems)
