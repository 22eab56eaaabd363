"""The monetization editor keeps each model to the fields its type uses: the
form ignores the others, the service and the database refuse a FREE model with
a price, and a migration fixed the rows written before."""

import importlib
from decimal import Decimal

import pytest
from django.apps import apps as global_apps
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from apps_catalog import services
from apps_catalog.models import App, MonetizationModel
from tests.a11y import axe_violations
from tests.accounts.factories import UserFactory
from tests.apps_catalog.factories import AppFactory, MonetizationModelFactory
from tests.e2e import screenshot, sign_in_browser

migration = importlib.import_module(
    "apps_catalog.migrations.0005_trash_and_free_price_rules"
)


# --- the form ignores what the type does not use -----------------------------


@pytest.mark.django_db
def test_free_model_submitted_with_a_price_is_saved_without_one(user_client, user):
    app = AppFactory(owner=user)

    response = user_client.post(
        reverse("monetization_editor", args=[app.pk]),
        {"type": "FREE", "price": "9.99", "subscription_interval": "MONTHLY"},
    )

    assert response.status_code == 302
    model = MonetizationModel.objects.get(app=app)
    assert (model.type, model.price, model.subscription_interval) == ("FREE", None, "")


@pytest.mark.django_db
def test_a_bad_price_left_behind_does_not_block_a_free_model(user_client, user):
    """After "ONE_TIME, price abc" failed, switching to FREE saves FREE: the
    price is not FREE's field, so neither its value nor its error counts."""
    app = AppFactory(owner=user)
    url = reverse("monetization_editor", args=[app.pk])

    failed = user_client.post(url, {"type": "ONE_TIME", "price": "abc"})
    assert failed.status_code == 200
    assert "Enter a number." in failed.content.decode()
    assert not MonetizationModel.objects.exists()

    user_client.post(url, {"type": "FREE", "price": "abc"})

    model = MonetizationModel.objects.get(app=app)
    assert (model.type, model.price) == ("FREE", None)


@pytest.mark.django_db
def test_editing_a_subscription_into_free_clears_price_and_interval(
    user_client, user, client
):
    model = MonetizationModelFactory(app__owner=user, subscription=True)

    user_client.post(
        reverse("monetization_edit", args=[model.app_id, model.pk]),
        {"type": "FREE", "price": "9.99", "subscription_interval": "MONTHLY"},
    )

    model.refresh_from_db()
    assert (model.type, model.price, model.subscription_interval) == ("FREE", None, "")
    page = client.get(model.app.get_absolute_url()).content.decode()
    assert "$9.99" not in page


@pytest.mark.django_db
def test_one_time_purchase_drops_an_interval_but_keeps_its_price(user_client, user):
    app = AppFactory(owner=user)

    user_client.post(
        reverse("monetization_editor", args=[app.pk]),
        {"type": "ONE_TIME", "price": "19.00", "subscription_interval": "YEARLY"},
    )

    model = MonetizationModel.objects.get(app=app)
    assert (model.price, model.subscription_interval) == (Decimal("19.00"), "")


@pytest.mark.django_db
def test_fields_say_which_types_use_them_and_the_script_is_loaded(user_client, user):
    app = AppFactory(owner=user)

    content = user_client.get(
        reverse("monetization_editor", args=[app.pk])
    ).content.decode()

    assert 'data-monetization-type=""' in content
    assert 'data-monetization-types="ONE_TIME SUBSCRIPTION FREEMIUM USAGE_BASED"' in (
        content
    )
    assert 'data-monetization-types="SUBSCRIPTION"' in content
    assert "js/monetization.js" in content


# --- the service and the database ---------------------------------------------


@pytest.mark.django_db
def test_service_refuses_a_free_model_with_a_price(user):
    app = AppFactory(owner=user)

    with pytest.raises(ValidationError) as caught:
        services.monetization_create(
            app=app, actor=user, type="FREE", price=Decimal("9.99")
        )

    assert caught.value.message_dict == {"price": ["A free model has no price."]}
    assert not MonetizationModel.objects.exists()


@pytest.mark.django_db
def test_database_refuses_a_free_model_with_a_price():
    app = AppFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        MonetizationModel.objects.create(app=app, type="FREE", price=Decimal("1"))


@pytest.mark.django_db
def test_database_refuses_turning_a_priced_model_free_without_clearing_it():
    model = MonetizationModelFactory(one_time=True)

    with pytest.raises(IntegrityError), transaction.atomic():
        MonetizationModel.objects.filter(pk=model.pk).update(type="FREE")


@pytest.mark.django_db
def test_migration_clears_the_price_of_existing_free_models():
    app = AppFactory()
    constraint = next(
        c
        for c in MonetizationModel._meta.constraints
        if c.name == "monetization_free_no_price"
    )
    # The row the old editor could write, with the constraint out of the way.
    with connection.schema_editor() as editor:
        editor.remove_constraint(MonetizationModel, constraint)
    bad = MonetizationModel.objects.create(app=app, type="FREE", price=Decimal("9.99"))
    paid = MonetizationModelFactory(app=app, one_time=True)

    fixed = migration.free_models_drop_price(global_apps, None)
    with connection.cursor() as cursor:
        # The test's transaction still holds deferred FK checks; ALTER needs none.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    with connection.schema_editor() as editor:
        editor.add_constraint(MonetizationModel, constraint)  # now valid

    assert fixed == 1
    bad.refresh_from_db()
    paid.refresh_from_db()
    assert bad.price is None
    assert paid.price == Decimal("29.00")


# --- in a browser -------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_type_change_after_an_error_saves_a_free_model_in_a_browser(live_url, page):
    owner = UserFactory(name="Ada Builder")
    app = services.app_create(
        owner=owner, name="Habit Tracker", status=App.Status.ACTIVE
    )
    sign_in_browser(page, live_url, owner)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_url}/apps/{app.pk}/monetization/")

    # FREE (the default) hides both price and interval.
    assert page.locator("#id_price").is_hidden()
    assert page.locator("#id_subscription_interval").is_hidden()
    screenshot(page, "monetization_free_390")
    assert axe_violations(page, context="main") == []

    page.select_option("#id_type", "ONE_TIME")
    assert page.locator("#id_price").is_visible()
    assert page.locator("#id_subscription_interval").is_hidden()
    page.fill("#id_price", "-9.99")
    page.click("button:has-text('Add')")
    page.wait_for_selector("text=The price cannot be negative.")
    assert page.locator("#id_price").is_visible()  # the chosen type is kept
    screenshot(page, "monetization_error_390")
    assert not MonetizationModel.objects.exists()

    page.select_option("#id_type", "FREE")
    assert page.locator("#id_price").is_hidden()
    page.click("button:has-text('Add')")
    page.wait_for_selector("text=Monetization model added.")

    model = MonetizationModel.objects.get(app=app)
    assert (model.type, model.price) == ("FREE", None)
    page.set_viewport_size({"width": 1366, "height": 900})
    page.reload()  # without the flash message (base.html's, checked elsewhere)
    page.select_option("#id_type", "SUBSCRIPTION")
    assert page.locator("#id_subscription_interval").is_visible()
    screenshot(page, "monetization_subscription_1366")
    assert axe_violations(page, context="main") == []

    page.goto(f"{live_url}/apps/{app.pk}/")
    monetization = page.locator("section:has(h2:text('Monetization'))").inner_text()
    assert "Free" in monetization and "$" not in monetization
