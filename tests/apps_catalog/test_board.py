"""The requirements board: one column per status with counts and progress,
moves that answer the board partial to htmx (and a redirect without it), the
optimistic version check refusing stale moves, and the board in a real browser."""

import re

import pytest
from django.urls import reverse

from apps_catalog import selectors
from apps_catalog.models import Requirement
from tests.a11y import axe_violations, horizontal_overflow, widest_elements
from tests.apps_catalog.factories import AppFactory, RequirementFactory
from tests.e2e import screenshot, sign_in_browser

HTMX = {"HTTP_HX_REQUEST": "true"}


def _status_url(requirement, query: str = "") -> str:
    return (
        reverse("requirement_status", args=[requirement.app_id, requirement.pk]) + query
    )


def _column(content: str, status: str) -> str:
    """The HTML of one column of the board."""
    match = re.search(
        rf'<section class="board-column" data-status="{status}".*?</section>',
        content,
        re.S,
    )
    assert match, status
    return match.group(0)


def _count(content: str, status: str) -> int:
    column = _column(content, status)
    return int(re.search(r'<span class="board-count">(\d+)', column).group(1))


@pytest.fixture
def board_app(user):
    app = AppFactory(owner=user)
    RequirementFactory(app=app, description="Write the spec", priority="CRITICAL")
    RequirementFactory(app=app, description="Pick a name", priority="LOW")
    RequirementFactory(app=app, description="Build the API", status="IN_PROGRESS")
    RequirementFactory(app=app, description="Sketch the UI", status="COMPLETED")
    RequirementFactory(app=app, description="Blockchain", status="REJECTED")
    return app


# --- the board ----------------------------------------------------------------


def test_board_has_a_column_per_status_with_counts_and_progress(user_client, board_app):
    content = user_client.get(
        reverse("requirement_board", args=[board_app.pk])
    ).content.decode()

    assert [_count(content, s) for s in Requirement.Status] == [2, 1, 1, 1]
    assert "Write the spec" in _column(content, "PENDING")
    assert "Build the API" in _column(content, "IN_PROGRESS")
    assert "Sketch the UI" in _column(content, "COMPLETED")
    # Rejected requirements are not work left to do: 1 of 4, and said so.
    assert "1 of 4 done" in content
    assert "1 rejected, not counted" in content
    assert '<progress value="1" max="4"' in content
    # Priority and version on each card; most urgent first in a column.
    pending = _column(content, "PENDING")
    assert pending.index("Write the spec") < pending.index("Pick a name")
    assert "Critical" in pending and "Version 1" in pending
    # No select that submits on change (WCAG 3.2.2); explicit move buttons.
    assert "data-autosubmit" not in content
    assert 'aria-label="Move “Write the spec” to In progress"' in content


def test_board_filtered_shows_matching_cards_and_says_counts_follow(
    user_client, board_app
):
    content = user_client.get(
        reverse("requirement_board", args=[board_app.pk]), {"priority": "CRITICAL"}
    ).content.decode()

    assert "Write the spec" in content
    assert "Pick a name" not in content and "Build the API" not in content
    assert [_count(content, s) for s in Requirement.Status] == [1, 0, 0, 0]
    assert "counts cover only the requirements matching the filter" in content
    # A move from a filtered board comes back to the same filtered board.
    assert "/status/?priority=CRITICAL" in content
    assert 'name="next" value="/apps/' in content and "?priority=CRITICAL" in content


def test_board_with_a_bad_filter_value_answers_the_whole_board(user_client, board_app):
    response = user_client.get(
        reverse("requirement_board", args=[board_app.pk]), {"status": "NOPE"}
    )

    assert response.status_code == 200
    assert "Pick a name" in response.content.decode()


def test_board_is_read_only_for_visitors(other_client, board_app):
    content = other_client.get(
        reverse("requirement_board", args=[board_app.pk])
    ).content.decode()

    assert "Write the spec" in content
    assert "Move to" not in content and "data-movable" not in content
    assert "board.js" not in content and "htmx" not in content
    assert "Add a requirement" not in content


def test_board_queries_are_bounded(user_client, user, django_assert_max_num_queries):
    app = AppFactory(owner=user)
    url = reverse("requirement_board", args=[app.pk])
    RequirementFactory.create_batch(40, app=app)
    user_client.get(url)  # the session's first request records it

    # Session, user, app, requirements: the cards cost no query each.
    with django_assert_max_num_queries(4):
        response = user_client.get(url)

    assert _count(response.content.decode(), "PENDING") == 40


def test_board_over_its_cap_says_so_with_one_more_query(
    user_client, user, monkeypatch, django_assert_max_num_queries
):
    monkeypatch.setattr(selectors, "REQUIREMENT_BOARD_LIMIT", 30)
    app = AppFactory(owner=user)
    url = reverse("requirement_board", args=[app.pk])
    RequirementFactory.create_batch(35, app=app)
    RequirementFactory.create_batch(5, app=app, status="COMPLETED")
    user_client.get(url)

    with django_assert_max_num_queries(5):
        response = user_client.get(url)

    content = response.content.decode()
    assert "Showing the first 30 of 40 requirements" in content
    assert content.count('class="board-card"') == 30
    assert [_count(content, s) for s in Requirement.Status] == [35, 0, 5, 0]


def test_board_selector_over_its_cap_counts_every_requirement(user):
    app = AppFactory(owner=user)
    RequirementFactory.create_batch(4, app=app)
    RequirementFactory.create_batch(2, app=app, status="COMPLETED")

    board = selectors.requirement_board(app=app, limit=3)

    assert (board.capped, board.shown, board.total) == (True, 3, 6)
    assert [column.count for column in board.columns] == [4, 0, 2, 0]
    assert sum(len(column.cards) for column in board.columns) == 3


# --- moving a card ------------------------------------------------------------


def test_htmx_move_answers_the_board_partial_with_the_moved_card(
    user_client, board_app
):
    requirement = board_app.requirements.get(description="Pick a name")

    response = user_client.post(
        _status_url(requirement), {"status": "IN_PROGRESS", "version": 1}, **HTMX
    )

    content = response.content.decode()
    assert response.status_code == 200
    assert content.lstrip().startswith("<div")  # the partial, not a page
    assert "<html" not in content and 'id="requirement-board"' in content
    assert "Pick a name" in _column(content, "IN_PROGRESS")
    assert "Pick a name" not in _column(content, "PENDING")
    assert f'id="requirement-{requirement.pk}"' in content and "data-moved" in content
    assert "Moved “Pick a name” to In progress." in content
    requirement.refresh_from_db()
    assert (requirement.status, requirement.version) == ("IN_PROGRESS", 2)
    # The message was shown in the partial: it does not come back on the next page.
    page = user_client.get(reverse("requirement_board", args=[board_app.pk]))
    assert "Moved “Pick a name”" not in page.content.decode()


def test_move_without_htmx_redirects_to_the_board_it_came_from(user_client, board_app):
    requirement = board_app.requirements.get(description="Pick a name")
    board = reverse("requirement_board", args=[board_app.pk]) + "?priority=LOW"

    response = user_client.post(
        _status_url(requirement, "?priority=LOW"),
        {"status": "COMPLETED", "version": 1, "next": board},
    )

    assert (response.status_code, response["Location"]) == (302, board)
    followed = user_client.get(board).content.decode()
    assert "Moved “Pick a name” to Completed." in followed


def test_stale_htmx_move_is_refused_in_place_and_shows_the_current_state(
    user_client, board_app
):
    requirement = board_app.requirements.get(description="Pick a name")
    # Someone else moved it first (version 1 → 2).
    Requirement.objects.filter(pk=requirement.pk).update(status="COMPLETED", version=2)

    response = user_client.post(
        _status_url(requirement), {"status": "IN_PROGRESS", "version": 1}, **HTMX
    )

    content = response.content.decode()
    assert response.status_code == 200
    alert = re.search(
        r'<p class="board-message error" role="alert">(.*?)</p>', content
    ).group(1)
    assert "changed by someone else" in alert and "was not moved" in alert
    assert "Pick a name" in _column(content, "COMPLETED")
    assert "Pick a name" not in _column(content, "IN_PROGRESS")
    # The refreshed card carries the current version for the next move.
    card = re.search(rf'id="requirement-{requirement.pk}".*?</li>', content, re.S)
    assert 'name="version" value="2"' in card.group(0)
    requirement.refresh_from_db()
    assert (requirement.status, requirement.version) == ("COMPLETED", 2)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"status": "DONE", "version": 1}, "choose one of Pending, In progress"),
        ({"version": 1}, "choose one of Pending, In progress"),
        ({"status": "COMPLETED", "version": "x"}, "reload the board and try again"),
        ({"status": "COMPLETED"}, "reload the board and try again"),
        ({"status": "COMPLETED", "version": "0"}, "reload the board and try again"),
        # Past PostgreSQL's integer: no row has it, so the move is stale.
        ({"status": "COMPLETED", "version": "9" * 30}, "changed by someone else"),
    ],
)
def test_bad_move_input_gets_a_clear_message_and_changes_nothing(
    user_client, board_app, data, message
):
    requirement = board_app.requirements.get(description="Pick a name")

    partial = user_client.post(_status_url(requirement), data, **HTMX)
    plain = user_client.post(_status_url(requirement), data, follow=True)

    assert partial.status_code == 200 and plain.status_code == 200
    assert message in partial.content.decode()
    assert message in plain.content.decode()
    requirement.refresh_from_db()
    assert (requirement.status, requirement.version) == ("PENDING", 1)


def test_move_of_a_removed_requirement_says_so(user_client, board_app):
    requirement = board_app.requirements.get(description="Pick a name")
    url = _status_url(requirement)
    requirement.delete()

    partial = user_client.post(url, {"status": "COMPLETED", "version": 1}, **HTMX)
    plain = user_client.post(url, {"status": "COMPLETED", "version": 1})

    assert partial.status_code == 200
    assert "That requirement no longer exists." in partial.content.decode()
    assert plain.status_code == 404


@pytest.mark.parametrize("headers", [{}, HTMX])
def test_owner_cannot_move_another_users_card_through_their_own_board(
    user_client, board_app, headers
):
    """The requirement id is looked up on the app of the URL only."""
    theirs = RequirementFactory(description="Their secret plan")
    url = reverse("requirement_status", args=[board_app.pk, theirs.pk])

    response = user_client.post(url, {"status": "COMPLETED", "version": 1}, **headers)

    assert response.status_code == (200 if headers else 404)
    assert "Their secret plan" not in response.content.decode()
    theirs.refresh_from_db()
    assert (theirs.status, theirs.version) == ("PENDING", 1)


@pytest.mark.parametrize("headers", [{}, HTMX])
def test_non_owner_cannot_move_a_card(other_client, board_app, headers):
    requirement = board_app.requirements.get(description="Pick a name")

    response = other_client.post(
        _status_url(requirement), {"status": "COMPLETED", "version": 1}, **headers
    )

    assert response.status_code == 404
    requirement.refresh_from_db()
    assert (requirement.status, requirement.version) == ("PENDING", 1)


def test_signed_out_move_goes_to_sign_in(client, board_app):
    requirement = board_app.requirements.get(description="Pick a name")

    response = client.post(
        _status_url(requirement), {"status": "COMPLETED", "version": 1}, **HTMX
    )

    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    requirement.refresh_from_db()
    assert requirement.status == "PENDING"


# --- in a real browser --------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_board_moves_in_place_and_refuses_a_stale_move_in_a_real_browser(
    live_url, page
):
    from tests.accounts.factories import UserFactory

    owner = UserFactory(name="Bo Ard")
    app = AppFactory(owner=owner, name="Board Game")
    # Enough cards that the page scrolls, on a phone-sized window.
    RequirementFactory.create_batch(8, app=app, priority="LOW")
    target = RequirementFactory(
        app=app, description="Ship the board", priority="CRITICAL"
    )
    stale = RequirementFactory(
        app=app, description="Stale card", priority="CRITICAL", status="IN_PROGRESS"
    )
    sign_in_browser(page, live_url, owner)
    page.set_viewport_size({"width": 390, "height": 700})
    page.goto(f"{live_url}/apps/{app.pk}/requirements/")
    assert horizontal_overflow(page) == 0, widest_elements(page)

    card = page.locator(f"#requirement-{target.pk}")
    button = card.get_by_role("button", name="Move “Ship the board” to Completed")
    button.scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, 40); window.__marker = 1")
    scroll_before = page.evaluate("window.scrollY")
    assert scroll_before > 0
    button.click()

    page.wait_for_selector(
        f".board-column[data-status=COMPLETED] #requirement-{target.pk}"
    )
    assert page.evaluate("window.__marker") == 1  # no navigation happened
    assert page.evaluate("window.scrollY") == scroll_before
    assert "Moved “Ship the board” to Completed." in page.inner_text(
        "#requirement-board [role=status]"
    )
    # Focus stays on the moved card, for keyboard users (board.js, once htmx
    # has settled the swap). Playwright's expect, not wait_for_function: a
    # string predicate that has to poll is eval'd in the page, which the
    # site's CSP (no 'unsafe-eval') refuses.
    from playwright.sync_api import expect

    expect(page.locator(f"#requirement-{target.pk}")).to_be_focused(timeout=3000)
    assert page.inner_text("#board-progress-text").startswith("1 of 10 done")
    screenshot(page, "board_moved_390")
    target.refresh_from_db()
    assert (target.status, target.version) == ("COMPLETED", 2)

    # Someone else moves "Stale card" in the meantime; this page still shows v1.
    Requirement.objects.filter(pk=stale.pk).update(status="REJECTED", version=5)
    page.get_by_role("button", name="Move “Stale card” to Completed").click()
    alert = page.wait_for_selector("#requirement-board [role=alert]")
    assert "changed by someone else" in alert.inner_text()
    page.wait_for_selector(
        f".board-column[data-status=REJECTED] #requirement-{stale.pk}"
    )
    assert page.evaluate("window.__marker") == 1
    assert page.locator(f"#requirement-{stale.pk}").inner_text().count("Version 5")
    stale.refresh_from_db()
    assert (stale.status, stale.version) == ("REJECTED", 5)
    assert horizontal_overflow(page) == 0, widest_elements(page)
    screenshot(page, "board_stale_390")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_board_drag_and_drop_moves_a_card_in_a_real_browser(live_url, page):
    from tests.accounts.factories import UserFactory

    owner = UserFactory(name="Drag Ger")
    app = AppFactory(owner=owner, name="Drop Zone")
    card = RequirementFactory(app=app, description="Drag me", priority="HIGH")
    sign_in_browser(page, live_url, owner)
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_url}/apps/{app.pk}/requirements/")
    page.evaluate("window.__marker = 1")

    page.drag_and_drop(
        f"#requirement-{card.pk}", ".board-column[data-status=IN_PROGRESS]"
    )

    page.wait_for_selector(
        f".board-column[data-status=IN_PROGRESS] #requirement-{card.pk}"
    )
    assert page.evaluate("window.__marker") == 1
    card.refresh_from_db()
    assert (card.status, card.version) == ("IN_PROGRESS", 2)
    assert axe_violations(page) == []
    assert horizontal_overflow(page) == 0, widest_elements(page)
    screenshot(page, "board_1366")
    page.emulate_media(color_scheme="dark")
    page.wait_for_timeout(500)  # Pico's colour transitions settle
    assert axe_violations(page) == []
    screenshot(page, "board_1366_dark")
