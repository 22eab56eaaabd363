"""The owner's trash: a deleted app stays restorable by its owner for 30 days
(My apps lists it, with Restore; a message with Undo right after deleting);
after that only staff bring it back."""

import importlib
from datetime import timedelta

import pytest
from django.apps import apps as global_apps
from django.contrib.messages import get_messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from apps_catalog import services, views
from apps_catalog.models import App
from apps_catalog.selectors import apps_in_trash
from tests.a11y import axe_violations
from tests.accounts.factories import UserFactory
from tests.apps_catalog.factories import AppFactory
from tests.e2e import screenshot, sign_in_browser

migration = importlib.import_module(
    "apps_catalog.migrations.0005_trash_and_free_price_rules"
)


def _deleted(owner, *, days_ago: float = 0, **fields) -> App:
    app = AppFactory(owner=owner, **fields)
    services.app_delete(app=app, actor=owner)
    if days_ago:
        App.objects.filter(pk=app.pk).update(
            deleted_at=timezone.now() - timedelta(days=days_ago)
        )
    return App.objects.get(pk=app.pk)


# --- delete, trash, restore -----------------------------------------------------


@pytest.mark.django_db
def test_owner_deletes_finds_it_in_the_trash_and_restores_it(user_client, user):
    app = AppFactory(owner=user, name="Habit Tracker")

    user_client.post(reverse("app_delete", args=[app.pk]))

    app.refresh_from_db()
    assert app.status == App.Status.DELETED and app.deleted_at is not None
    page = user_client.get(reverse("my_apps")).content.decode()
    trash = page[page.index('id="trash-heading"') :]
    assert "Habit Tracker" in trash
    assert reverse("app_restore", args=[app.pk]) in trash

    response = user_client.post(
        reverse("app_restore", args=[app.pk]), {"next": reverse("my_apps")}
    )

    assert response["Location"] == reverse("my_apps")
    app.refresh_from_db()
    assert (app.status, app.deleted_at) == (App.Status.DRAFT, None)
    page = user_client.get(reverse("my_apps")).content.decode()
    assert "trash-heading" not in page  # the trash is empty again
    assert "Habit Tracker" in page  # back among the apps, as a draft


@pytest.mark.django_db
def test_owner_may_restore_on_day_29(user_client, user):
    app = _deleted(user, days_ago=29)

    user_client.post(reverse("app_restore", args=[app.pk]))

    assert App.objects.get(pk=app.pk).status == App.Status.DRAFT


@pytest.mark.django_db
def test_a_31_day_old_deletion_is_out_of_the_trash_and_restore_is_refused(
    user_client, user
):
    app = _deleted(user, days_ago=31, name="Long gone")

    page = user_client.get(reverse("my_apps")).content.decode()
    assert "Long gone" not in page

    response = user_client.post(reverse("app_restore", args=[app.pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("my_apps")
    [message] = get_messages(response.wsgi_request)
    assert "more than 30 days ago" in str(message)
    assert App.objects.get(pk=app.pk).status == App.Status.DELETED
    follow = user_client.get(response["Location"]).content.decode()
    assert "can no longer be restored" in follow


@pytest.mark.django_db
def test_a_deleted_app_without_a_date_counts_as_past_the_trash(user_client, user):
    """Rows deleted by hand or loaded in bulk carry no date: staff only."""
    app = AppFactory(owner=user, status=App.Status.DELETED)

    user_client.post(reverse("app_restore", args=[app.pk]))

    assert App.objects.get(pk=app.pk).status == App.Status.DELETED
    assert not apps_in_trash(owner=user).exists()


@pytest.mark.django_db
def test_staff_may_restore_after_the_trash_expired(user, admin_user):
    app = _deleted(user, days_ago=400)

    with pytest.raises(ValidationError):
        services.app_restore(app=app, actor=user)
    services.app_restore(app=app, actor=admin_user, by_staff=True)

    assert App.objects.get(pk=app.pk).status == App.Status.DRAFT


@pytest.mark.django_db
def test_others_never_see_nor_restore_someones_trashed_app(
    other_client, user, other_user
):
    app = _deleted(user, name="Private trash")

    my_apps = other_client.get(reverse("my_apps")).content.decode()
    restore = other_client.post(reverse("app_restore", args=[app.pk]))
    detail = other_client.get(reverse("app_detail", args=[app.pk]))

    assert "Private trash" not in my_apps
    assert (restore.status_code, detail.status_code) == (404, 404)
    assert App.objects.get(pk=app.pk).status == App.Status.DELETED
    assert not apps_in_trash(owner=other_user).exists()
    with pytest.raises(PermissionDenied):
        services.app_restore(app=app, actor=other_user)


@pytest.mark.django_db
def test_restore_of_a_live_app_that_is_not_yours_answers_404(other_client, user):
    app = AppFactory(owner=user, status=App.Status.ARCHIVED)

    response = other_client.post(reverse("app_restore", args=[app.pk]))

    assert response.status_code == 404
    assert App.objects.get(pk=app.pk).status == App.Status.ARCHIVED


# --- undo right after deleting ----------------------------------------------------


@pytest.mark.django_db
def test_delete_shows_a_message_with_undo_once_and_escapes_the_name(user_client, user):
    app = AppFactory(owner=user, name="<b>Bold</b> & co")

    response = user_client.post(reverse("app_delete", args=[app.pk]), follow=True)

    page = response.content.decode()
    assert "“&lt;b&gt;Bold&lt;/b&gt; &amp; co” deleted." in page
    assert "<b>Bold</b>" not in page
    undo = page[page.index("undo-text") :]
    undo = undo[: undo.index("</form>")]
    assert f'action="{reverse("app_restore", args=[app.pk])}"' in undo
    assert ">Undo<" in undo
    # Only once: a reload shows the trash, not the message.
    assert "undo-text" not in user_client.get(reverse("my_apps")).content.decode()


@pytest.mark.django_db
def test_undo_restores_the_app_and_returns_to_my_apps(user_client, user):
    app = AppFactory(owner=user, name="Oops")
    user_client.post(reverse("app_delete", args=[app.pk]))

    response = user_client.post(
        reverse("app_restore", args=[app.pk]), {"next": reverse("my_apps")}
    )

    assert response["Location"] == reverse("my_apps")
    assert App.objects.get(pk=app.pk).status == App.Status.DRAFT
    page = user_client.get(reverse("my_apps")).content.decode()
    assert "“Oops” restored." in page


@pytest.mark.django_db
def test_restore_ignores_a_next_url_off_the_site(user_client, user):
    app = _deleted(user)

    response = user_client.post(
        reverse("app_restore", args=[app.pk]), {"next": "https://evil.example/"}
    )

    assert response["Location"] == app.get_absolute_url()


# --- buttons ----------------------------------------------------------------------


@pytest.mark.django_db
def test_delete_actions_are_danger_buttons(user_client, user):
    app = AppFactory(owner=user)

    detail = user_client.get(app.get_absolute_url()).content.decode()
    confirm = user_client.get(reverse("app_delete", args=[app.pk])).content.decode()
    edit = user_client.get(reverse("app_edit", args=[app.pk])).content.decode()

    delete_link = f'href="{reverse("app_delete", args=[app.pk])}" role="button"'
    assert f'{delete_link} class="danger"' in detail
    assert f'{delete_link} class="danger"' in edit
    assert '<button type="submit" class="danger">Delete</button>' in confirm
    assert "30 days" in confirm


# --- the query ----------------------------------------------------------------------


@pytest.mark.django_db
def test_my_apps_query_count_does_not_grow_with_apps_or_trash(
    user_client, user, django_assert_max_num_queries
):
    def add(n):
        for _ in range(n):
            AppFactory(owner=user)
            _deleted(user)

    add(2)
    user_client.get(reverse("my_apps"))  # warm-up: the session is recorded
    # Session, user, the trash page and the apps' page (neither counted).
    with django_assert_max_num_queries(5) as few:
        user_client.get(reverse("my_apps"))
    add(25)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = user_client.get(reverse("my_apps"))
    trash = response.context["trash_page"]
    assert (len(trash), trash.has_next()) == (20, True)
    # No COUNT: the trash reads one page (plus one row) and nothing else.
    trash_sql = [q["sql"] for q in few.captured_queries if "deleted_at" in q["sql"]]
    assert trash_sql and not any("COUNT(" in sql for sql in trash_sql)


@pytest.mark.django_db
@pytest.mark.parametrize("number", ["2", "x", "0", "-1", "9" * 5000, "999"])
def test_trash_pages_without_counting_and_odd_page_numbers_answer(
    user_client, user, number, monkeypatch
):
    monkeypatch.setattr(views, "PER_PAGE", 2)
    for _ in range(3):
        _deleted(user)

    response = user_client.get(reverse("my_apps"), {"trash": number})

    assert response.status_code == 200
    trash = response.context["trash_page"]
    if number == "2":
        assert (trash.number, len(trash), trash.has_next()) == (2, 1, False)
        assert "← Previous" in response.content.decode()
    else:
        assert (trash.number, len(trash), trash.has_next()) == (1, 2, True)
        assert "Next →" in response.content.decode()


@pytest.mark.django_db
def test_trash_is_read_through_its_partial_index(user):
    _deleted(user)
    AppFactory.create_batch(3, owner=user)
    with connection.cursor() as cursor:
        # Whether the index can give the rows in order at all, whatever the
        # statistics other tests' rows left (a bitmap scan and a sort of a few
        # rows may then look cheaper).
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("SET LOCAL enable_sort = off")

    plan = apps_in_trash(owner=user)[:20].explain()

    assert "app_owner_trash_idx" in plan
    assert "Sort" not in plan


# --- the database and the migration ------------------------------------------------


@pytest.mark.django_db
def test_database_refuses_a_deletion_date_on_a_live_app():
    app = AppFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        App.objects.filter(pk=app.pk).update(deleted_at=timezone.now())


@pytest.mark.django_db
def test_migration_dates_apps_deleted_before_the_trash_existed(user):
    old = AppFactory(owner=user, status=App.Status.DELETED)
    live = AppFactory(owner=user)
    App.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=3))

    assert migration.deleted_apps_date(global_apps, None) == 1

    old.refresh_from_db()
    live.refresh_from_db()
    assert old.deleted_at == old.updated_at
    assert live.deleted_at is None
    assert list(apps_in_trash(owner=user)) == [old]


# --- in a browser -------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_delete_then_undo_in_a_browser(live_url, page):
    owner = UserFactory(name="Ada Builder")
    app = services.app_create(
        owner=owner, name="Habit Tracker", status=App.Status.ACTIVE
    )
    _deleted(owner, days_ago=3, name="Old Experiment")
    sign_in_browser(page, live_url, owner)
    page.set_viewport_size({"width": 390, "height": 844})

    page.goto(f"{live_url}/apps/{app.pk}/")
    page.click("a:has-text('Delete…')")
    page.click("button:has-text('Delete')")
    page.wait_for_selector("text=“Habit Tracker” deleted.")
    trash = page.locator("section.trash")
    assert "Habit Tracker" in trash.inner_text()
    assert "Old Experiment" in trash.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "trash_undo_390")
    assert axe_violations(page, context="main") == []
    page.set_viewport_size({"width": 1366, "height": 900})
    screenshot(page, "trash_undo_1366")
    page.emulate_media(color_scheme="dark")
    page.wait_for_timeout(500)  # Pico fades link colours in (transition)
    screenshot(page, "trash_undo_1366_dark")
    assert axe_violations(page, context="main") == []

    page.click("button:has-text('Undo')")
    page.wait_for_selector("text=“Habit Tracker” restored.")

    assert App.objects.get(pk=app.pk).status == App.Status.DRAFT
    assert "Habit Tracker" not in page.locator("section.trash").inner_text()
    assert "Habit Tracker" in page.locator("table").inner_text()
