"""How many statements each catalog write sends, and that a refusal by the
database reads exactly as the form's validation did (field, message, code).

Tests run inside a transaction, so a service without a transaction of its own
shows a SAVEPOINT / RELEASE pair around its write: that is what lets a caller
already in a transaction carry on after a refusal (live, in autocommit, the
pair is not sent).
"""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps_catalog import services
from apps_catalog.models import App, MonetizationModel, Post, Requirement
from tests.apps_catalog.factories import (
    AppFactory,
    MonetizationModelFactory,
    PostFactory,
    RequirementFactory,
)

pytestmark = pytest.mark.django_db


class Unstripped(str):
    """Text the services' ``.strip()`` leaves alone: whitespace that gets past
    the field checks, as only the database's ``\\S`` constraints then refuse."""

    def strip(self, chars=None):
        return self


def statements(ctx) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries]


def errors(exc: ValidationError) -> dict:
    return {
        field: [(error.message, error.code) for error in field_errors]
        for field, field_errors in exc.error_dict.items()
    }


def assert_usable():
    # The caller's transaction is not aborted: it can go on querying.
    App.objects.exists()


def refused(function, **kwargs) -> dict:
    with pytest.raises(ValidationError) as excinfo:
        function(**kwargs)
    assert_usable()
    return errors(excinfo.value)


def kinds(sqls: list[str]) -> list[str]:
    return [sql.split()[0] for sql in sqls]


# --- apps ---------------------------------------------------------------------


def test_app_create_is_one_insert(user):
    with CaptureQueriesContext(connection) as ctx:
        app = services.app_create(owner=user, name="Habits", domain="habits.example")

    assert kinds(statements(ctx)) == ["SAVEPOINT", "INSERT", "RELEASE"]
    assert App.objects.get(pk=app.pk).domain == "habits.example"


def test_app_create_with_a_taken_domain_says_so_and_creates_nothing(user, other_user):
    AppFactory(owner=other_user, domain="shop.example.com")

    with (
        CaptureQueriesContext(connection) as ctx,
        pytest.raises(ValidationError) as excinfo,
    ):
        services.app_create(owner=user, name="Shop", domain="Shop.Example.com")

    assert errors(excinfo.value) == {
        "domain": [("Another app already uses this domain.", "app_domain_unique")]
    }
    assert kinds(statements(ctx)) == ["SAVEPOINT", "INSERT", "ROLLBACK", "RELEASE"]
    assert not App.objects.filter(owner=user).exists()


def test_app_create_with_a_whitespace_name_gets_the_constraints_message(user):
    assert refused(services.app_create, owner=user, name=Unstripped("   ")) == {
        "name": [("An app needs a name.", "app_name_not_blank")]
    }
    assert not App.objects.filter(owner=user).exists()


def test_app_create_field_errors_come_before_any_statement(user):
    with (
        CaptureQueriesContext(connection) as ctx,
        pytest.raises(ValidationError) as excinfo,
    ):
        services.app_create(owner=user, name="", domain="not a domain")

    assert errors(excinfo.value) == {
        "name": [("This field cannot be blank.", "blank")],
        "domain": [("Enter a host name such as myapp.example.com.", "invalid")],
    }
    assert statements(ctx) == []


def test_app_update_is_the_lock_and_one_update(user):
    app = AppFactory(owner=user, domain="old.example.com")

    with CaptureQueriesContext(connection) as ctx:
        services.app_update(
            app=app, actor=user, name="New", domain="new.example.com", status="ACTIVE"
        )

    # The service's own transaction (a savepoint here), the status lock, the
    # UPDATE.
    assert kinds(statements(ctx)) == ["SAVEPOINT", "SELECT", "UPDATE", "RELEASE"]
    app.refresh_from_db()
    assert (app.name, app.domain) == ("New", "new.example.com")


def test_app_update_keeping_its_own_domain_is_no_clash(user):
    app = AppFactory(owner=user, domain="mine.example.com")

    services.app_update(app=app, actor=user, name="Renamed", domain="mine.example.com")

    app.refresh_from_db()
    assert (app.name, app.domain) == ("Renamed", "mine.example.com")


def test_app_update_to_a_taken_domain_says_so_and_changes_nothing(user, other_user):
    AppFactory(owner=other_user, domain="taken.example.com")
    app = AppFactory(owner=user, name="Mine", domain="mine.example.com")

    assert refused(
        services.app_update,
        app=app,
        actor=user,
        name="Renamed",
        domain="taken.example.com",
    ) == {"domain": [("Another app already uses this domain.", "app_domain_unique")]}
    stored = App.objects.get(pk=app.pk)
    assert (stored.name, stored.domain) == ("Mine", "mine.example.com")


def test_app_update_to_a_whitespace_name_gets_the_constraints_message(user):
    app = AppFactory(owner=user, name="Mine")

    assert refused(
        services.app_update, app=app, actor=user, name=Unstripped(" \t ")
    ) == {"name": [("An app needs a name.", "app_name_not_blank")]}
    assert App.objects.get(pk=app.pk).name == "Mine"


def test_app_update_by_staff_to_a_taken_domain_says_so(admin_user, user, other_user):
    AppFactory(owner=other_user, domain="taken.example.com")
    app = AppFactory(owner=user, domain="mine.example.com")

    assert refused(
        services.app_update_by_staff,
        app=app,
        actor=admin_user,
        changes={"domain": "taken.example.com"},
    ) == {"domain": [("Another app already uses this domain.", "app_domain_unique")]}
    assert App.objects.get(pk=app.pk).domain == "mine.example.com"


# --- requirements -------------------------------------------------------------


def test_requirement_create_is_one_insert(user):
    app = AppFactory(owner=user)

    with CaptureQueriesContext(connection) as ctx:
        services.requirement_create(app=app, actor=user, description="Sync")

    assert kinds(statements(ctx)) == ["SAVEPOINT", "INSERT", "RELEASE"]
    assert app.requirements.get().description == "Sync"


def test_requirement_create_with_whitespace_gets_the_constraints_message(user):
    app = AppFactory(owner=user)

    assert refused(
        services.requirement_create,
        app=app,
        actor=user,
        description=Unstripped("  "),
    ) == {
        "description": [
            ("Describe the requirement.", "requirement_description_not_blank")
        ]
    }
    assert not app.requirements.exists()


def test_requirement_update_is_one_versioned_update(user):
    requirement = RequirementFactory(app=AppFactory(owner=user))

    with CaptureQueriesContext(connection) as ctx:
        services.requirement_update(
            requirement=requirement,
            actor=user,
            expected_version=1,
            description="Offline mode",
            priority=Requirement.Priority.HIGH,
        )

    assert kinds(statements(ctx)) == ["SAVEPOINT", "UPDATE", "RELEASE"]
    stored = Requirement.objects.get(pk=requirement.pk)
    assert (stored.description, stored.version) == ("Offline mode", 2)


def test_requirement_update_with_whitespace_gets_the_constraints_message(user):
    requirement = RequirementFactory(app=AppFactory(owner=user), description="Keep")

    assert refused(
        services.requirement_update,
        requirement=requirement,
        actor=user,
        expected_version=1,
        description=Unstripped(" "),
        priority=Requirement.Priority.LOW,
    ) == {
        "description": [
            ("Describe the requirement.", "requirement_description_not_blank")
        ]
    }
    stored = Requirement.objects.get(pk=requirement.pk)
    assert (stored.description, stored.priority, stored.version) == (
        "Keep",
        Requirement.Priority.MEDIUM,
        1,
    )


def test_requirement_update_against_an_old_version_is_refused(user):
    requirement = RequirementFactory(app=AppFactory(owner=user), description="Keep")
    Requirement.objects.filter(pk=requirement.pk).update(version=2)

    with pytest.raises(ValidationError) as excinfo:
        services.requirement_update(
            requirement=requirement,
            actor=user,
            expected_version=1,
            description="Lost edit",
            priority=Requirement.Priority.LOW,
        )

    assert (excinfo.value.message, excinfo.value.code) == (
        services.STALE_REQUIREMENT_MESSAGE,
        "stale",
    )
    assert_usable()
    stored = Requirement.objects.get(pk=requirement.pk)
    assert (stored.description, stored.version) == ("Keep", 2)


def test_requirement_set_status_is_one_versioned_update(user):
    requirement = RequirementFactory(app=AppFactory(owner=user))

    with CaptureQueriesContext(connection) as ctx:
        services.requirement_set_status(
            requirement=requirement,
            actor=user,
            status=Requirement.Status.COMPLETED,
        )

    assert kinds(statements(ctx)) == ["SAVEPOINT", "UPDATE", "RELEASE"]
    stored = Requirement.objects.get(pk=requirement.pk)
    assert (stored.status, stored.version) == (Requirement.Status.COMPLETED, 2)


def test_requirement_set_status_against_an_old_version_is_refused(user):
    requirement = RequirementFactory(app=AppFactory(owner=user))

    with pytest.raises(ValidationError) as excinfo:
        services.requirement_set_status(
            requirement=requirement,
            actor=user,
            status=Requirement.Status.COMPLETED,
            expected_version=7,
        )

    assert excinfo.value.messages == [services.STALE_REQUIREMENT_MESSAGE]
    stored = Requirement.objects.get(pk=requirement.pk)
    assert (stored.status, stored.version) == (Requirement.Status.PENDING, 1)


def test_requirement_set_status_to_an_unknown_status_sends_nothing(user):
    requirement = RequirementFactory(app=AppFactory(owner=user))

    with (
        CaptureQueriesContext(connection) as ctx,
        pytest.raises(ValidationError) as excinfo,
    ):
        services.requirement_set_status(
            requirement=requirement, actor=user, status="LOST"
        )

    assert list(excinfo.value.message_dict) == ["status"]
    assert statements(ctx) == []


# --- monetization models ------------------------------------------------------


def test_monetization_create_is_one_insert(user):
    app = AppFactory(owner=user)

    with CaptureQueriesContext(connection) as ctx:
        services.monetization_create(
            app=app,
            actor=user,
            type=MonetizationModel.Type.SUBSCRIPTION,
            price=Decimal("4.99"),
            subscription_interval=MonetizationModel.Interval.YEARLY,
        )

    assert kinds(statements(ctx)) == ["SAVEPOINT", "INSERT", "RELEASE"]
    assert app.monetization_models.get().price == Decimal("4.99")


MONETIZATION_REFUSALS = [
    pytest.param(
        {"type": "FREE", "price": Decimal("1.00")},
        {"price": [("A free model has no price.", "monetization_free_no_price")]},
        id="free-with-price",
    ),
    pytest.param(
        {"type": "ONE_TIME"},
        {
            "price": [
                (
                    "One-time purchases and subscriptions need a price.",
                    "monetization_price_required",
                )
            ]
        },
        id="one-time-without-price",
    ),
    pytest.param(
        {"type": "SUBSCRIPTION", "price": Decimal("3.00")},
        {
            "subscription_interval": [
                (
                    "Subscriptions need a billing interval; other types have none.",
                    "monetization_interval_subscription_only",
                )
            ]
        },
        id="subscription-without-interval",
    ),
    pytest.param(
        {"type": "FREEMIUM", "subscription_interval": "MONTHLY"},
        {
            "subscription_interval": [
                (
                    "Subscriptions need a billing interval; other types have none.",
                    "monetization_interval_subscription_only",
                )
            ]
        },
        id="interval-without-subscription",
    ),
    pytest.param(
        # The field's own validator answers first, as it did before.
        {"type": "ONE_TIME", "price": Decimal("-1")},
        {"price": [("The price cannot be negative.", "min_value")]},
        id="negative-price",
    ),
]


@pytest.mark.parametrize(("kwargs", "expected"), MONETIZATION_REFUSALS)
def test_monetization_create_refusals_keep_their_messages(user, kwargs, expected):
    app = AppFactory(owner=user)

    assert refused(services.monetization_create, app=app, actor=user, **kwargs) == (
        expected
    )
    assert not app.monetization_models.exists()


def test_monetization_update_is_one_update(user):
    model = MonetizationModelFactory(app=AppFactory(owner=user))

    with CaptureQueriesContext(connection) as ctx:
        services.monetization_update(
            model=model,
            actor=user,
            type=MonetizationModel.Type.ONE_TIME,
            price=Decimal("19.00"),
        )

    assert kinds(statements(ctx)) == ["SAVEPOINT", "UPDATE", "RELEASE"]
    assert MonetizationModel.objects.get(pk=model.pk).price == Decimal("19.00")


@pytest.mark.parametrize(("kwargs", "expected"), MONETIZATION_REFUSALS)
def test_monetization_update_refusals_keep_their_messages(user, kwargs, expected):
    model = MonetizationModelFactory(app=AppFactory(owner=user))

    assert refused(services.monetization_update, model=model, actor=user, **kwargs) == (
        expected
    )
    stored = MonetizationModel.objects.get(pk=model.pk)
    assert (stored.type, stored.price, stored.subscription_interval) == (
        MonetizationModel.Type.FREE,
        None,
        "",
    )


# --- posts --------------------------------------------------------------------


def test_post_create_is_one_insert(user):
    app = AppFactory(owner=user)

    with CaptureQueriesContext(connection) as ctx:
        services.post_create(author=user, app=app, title="Launch")

    assert kinds(statements(ctx)) == ["SAVEPOINT", "INSERT", "RELEASE"]
    assert Post.objects.get(app=app).title == "Launch"


def test_post_create_with_a_whitespace_title_gets_the_constraints_message(user):
    assert refused(services.post_create, author=user, title=Unstripped("  ")) == {
        "title": [("A post needs a title.", "post_title_not_blank")]
    }
    assert not Post.objects.filter(author=user).exists()


def test_post_update_is_one_update(user):
    post = PostFactory(app=AppFactory(owner=user))

    with CaptureQueriesContext(connection) as ctx:
        services.post_update(post=post, actor=user, title="Renamed")

    assert kinds(statements(ctx)) == ["SAVEPOINT", "UPDATE", "RELEASE"]
    assert Post.objects.get(pk=post.pk).title == "Renamed"


def test_post_update_with_a_whitespace_title_changes_nothing(user):
    post = PostFactory(app=AppFactory(owner=user), title="Kept")

    assert refused(
        services.post_update, post=post, actor=user, title=Unstripped(" ")
    ) == {"title": [("A post needs a title.", "post_title_not_blank")]}
    assert Post.objects.get(pk=post.pk).title == "Kept"


# --- live, outside a transaction ----------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_in_autocommit_a_write_and_its_refusal_are_one_statement_each(user):
    # No transaction to keep usable, so no savepoint pair around the write.
    with CaptureQueriesContext(connection) as ctx:
        services.app_create(owner=user, name="Shop", domain="shop.example.com")
    assert kinds(statements(ctx)) == ["INSERT"]

    with CaptureQueriesContext(connection) as ctx:
        assert refused(
            services.app_create, owner=user, name="Shop 2", domain="shop.example.com"
        ) == {
            "domain": [("Another app already uses this domain.", "app_domain_unique")]
        }
    assert kinds(statements(ctx)) == ["INSERT", "SELECT"]  # the SELECT: assert_usable
    assert App.objects.filter(owner=user).count() == 1
