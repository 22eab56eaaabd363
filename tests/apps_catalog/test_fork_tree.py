"""The fork path above an app (its ancestors, root first), the nested tree of
its forks with each owner's public name, and a fork's default name."""

import re

import pytest

from apps_catalog import services
from apps_catalog.models import App
from tests.a11y import axe_violations
from tests.accounts.factories import UserFactory
from tests.apps_catalog.factories import AppFactory
from tests.e2e import screenshot, sign_in_browser

pytestmark = pytest.mark.django_db


def _fork(app, owner, name=None, status=App.Status.ACTIVE):
    fork = services.app_fork(app=app, actor=owner)
    return services.app_update(
        app=fork, actor=owner, name=name or fork.name, status=status
    )


def _between(html: str, start: str, end: str) -> str:
    begin = html.index(start)
    return html[begin : html.index(end, begin)]


# --- default name -----------------------------------------------------------------


def test_a_fork_is_named_as_a_fork(user):
    original = AppFactory(name="Habit Tracker")

    fork = services.app_fork(app=original, actor=user)

    assert fork.name == "Habit Tracker (fork)"


def test_a_fork_of_a_fork_does_not_stack_the_suffix(user, other_user):
    original = AppFactory(name="Habit Tracker")
    fork = _fork(original, user)

    again = services.app_fork(app=fork, actor=other_user)

    assert again.name == "Habit Tracker (fork)"


def test_a_long_name_is_cut_so_the_suffix_fits(user):
    max_length = App._meta.get_field("name").max_length
    original = AppFactory(name="x" * max_length)

    fork = services.app_fork(app=original, actor=user)

    assert len(fork.name) == max_length
    assert fork.name.endswith("… (fork)")


# --- the app page -------------------------------------------------------------------


def test_fork_of_a_fork_shows_the_path_root_first(client, user, other_user):
    ada = UserFactory(name="Ada Builder")
    original = AppFactory(owner=ada, name="Habit Tracker")
    first = _fork(original, user, "Fork 1")
    second = _fork(first, other_user, "Fork 2")

    page = client.get(second.get_absolute_url()).content.decode()

    path = _between(page, '<nav aria-label="Fork path"', "</nav>")
    assert "<ol>" in path
    assert path.index("Habit Tracker") < path.index("Fork 1") < path.index("Fork 2")
    assert 'aria-current="page">Fork 2<' in path
    assert "Ada Builder" in path
    # The path sits above the app's own heading.
    assert page.index('aria-label="Fork path"') < page.index("<h1>")


def test_an_original_has_no_fork_path(client):
    app = AppFactory()

    page = client.get(app.get_absolute_url()).content.decode()

    assert 'aria-label="Fork path"' not in page
    assert "Nobody has forked this app yet." in page


def test_original_shows_its_forks_as_a_nested_tree_with_owners(client):
    ada = UserFactory(name="Ada Builder", email="ada@example.com")
    grace = UserFactory(name="Grace Forker", email="grace@example.com")
    linus = UserFactory(name="", first_name="", last_name="", email="l@example.com")
    original = AppFactory(owner=ada, name="Habit Tracker")
    first = _fork(original, grace, "Fork 1")
    _fork(first, linus, "Fork 2")
    _fork(original, linus, "Fork 3")

    page = client.get(original.get_absolute_url()).content.decode()

    tree = page[page.index('<ul class="fork-tree"') :]
    tree = tree[: tree.index("</section>")]
    # Fork 2 sits in a list nested inside Fork 1's item; Fork 3 beside Fork 1.
    fork1 = _between(tree, "Fork 1", "Fork 3")
    assert re.search(r"<ul>\s*<li>.*Fork 2", fork1, re.S)
    assert "by Grace Forker" in tree
    assert tree.count("by ") == 4  # the app itself and its three forks
    assert "@example.com" not in page  # never an address, not even a fallback


def test_app_page_query_count_is_bounded_for_deep_paths_and_wide_trees(
    client, django_assert_max_num_queries
):
    root = AppFactory()
    chain = [root]
    for _ in range(3):
        chain.append(_fork(chain[-1], UserFactory()))
    middle = chain[2]

    client.get(middle.get_absolute_url())
    with django_assert_max_num_queries(10) as small:
        client.get(middle.get_absolute_url())
    for _ in range(10):
        chain.append(_fork(chain[-1], UserFactory()))
        _fork(middle, UserFactory())
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(middle.get_absolute_url())
    assert len(response.context["tree"].root.children) == 11


# --- in a browser -------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_fork_path_and_nested_tree_in_a_browser(live_url, page):
    ada = UserFactory(name="Ada Builder")
    grace = UserFactory(name="Grace Forker")
    linus = UserFactory(name="Linus Owner")
    original = services.app_create(
        owner=ada, name="Habit Tracker", status=App.Status.ACTIVE
    )
    first = _fork(original, grace, "Fork 1")
    sign_in_browser(page, live_url, linus)

    # Linus forks Fork 1 with the button: the fork is "Fork 1 (fork)".
    page.goto(f"{live_url}/apps/{first.pk}/")
    page.click("section.actions button:has-text('Fork')")
    page.wait_for_selector("text=Your copy is a draft")
    second = App.objects.get(owner=linus)
    assert second.name == "Fork 1 (fork)"
    path = page.locator("nav[aria-label='Fork path'] ol li")
    assert path.all_inner_texts()[0].startswith("Habit Tracker")
    assert path.all_inner_texts()[1].startswith("Fork 1")
    assert path.all_inner_texts()[2] == "Fork 1 (fork)"
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "fork_path_390")
    page.reload()  # without the flash message (base.html's, checked elsewhere)
    assert axe_violations(page, context="main") == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    page.goto(f"{live_url}/apps/{original.pk}/")
    nested = page.locator(".fork-tree li li li")  # original, Fork 1, the fork
    assert "Fork 1 (fork)" in nested.inner_text()
    assert "by Linus Owner" in nested.inner_text()
    assert "by Grace Forker" in page.locator(".fork-tree li li").first.inner_text()
    screenshot(page, "fork_tree_390")
    page.set_viewport_size({"width": 1366, "height": 900})
    screenshot(page, "fork_tree_1366")
    page.emulate_media(color_scheme="dark")
    page.wait_for_timeout(500)  # Pico fades link colours in (transition)
    screenshot(page, "fork_tree_1366_dark")
    assert axe_violations(page, context="main") == []
