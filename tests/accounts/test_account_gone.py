"""A write racing the deletion of its own account (another tab, or staff, in
another process) fails on the foreign key to the deleted user row: the browser
is signed out with a message, never a 500, and nothing is written."""

import threading

import pytest
from django.db import connection
from django.db.models.signals import pre_save
from django.urls import reverse

from accounts.middleware import ACCOUNT_GONE_MESSAGE
from accounts.models import User
from accounts.services import user_delete
from apps_catalog.models import App
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def deleted_just_before_the_write():
    """When the request is about to INSERT the app, its owner's account is
    deleted and committed by another connection (a thread has its own), as
    when the user confirms deletion in another tab at that moment."""

    def delete_owner(sender, instance, **kwargs):
        if instance.pk and not instance._state.adding:
            return
        owner = User.objects.get(pk=instance.owner_id)

        def erase():
            try:
                user_delete(user=owner, confirm_email=owner.email)
            finally:
                connection.close()

        thread = threading.Thread(target=erase)
        thread.start()
        thread.join()

    pre_save.connect(delete_owner, sender=App)
    try:
        yield
    finally:
        pre_save.disconnect(delete_owner, sender=App)


def test_creating_an_app_as_the_account_is_deleted_signs_out_instead_of_500(
    client, deleted_just_before_the_write
):
    user = UserFactory()
    client.force_login(user)

    response = client.post(
        reverse("app_create"),
        {"name": "Racing app", "status": "DRAFT"},
        follow=True,
    )

    assert response.status_code == 200
    assert response.redirect_chain[0][0] == reverse("account_login")
    assert ACCOUNT_GONE_MESSAGE in response.content.decode()
    assert not User.objects.filter(pk=user.pk).exists()
    assert not App.objects.exists()
    # Signed out: a page for members sends the browser to sign in.
    assert client.get(reverse("my_apps")).status_code == 302


def test_a_foreign_key_failure_while_the_account_exists_is_not_hidden(client):
    """Only the deleted-account race is turned into a sign-out: the middleware
    leaves any other foreign-key failure alone (one lookup, then None)."""
    from django.contrib.auth import SESSION_KEY
    from django.db import IntegrityError
    from django.test import RequestFactory
    from psycopg.errors import ForeignKeyViolation

    from accounts.middleware import AccountGoneMiddleware

    user = UserFactory()
    request = RequestFactory().post("/apps/new/")
    request.user = user
    request.session = {SESSION_KEY: str(user.pk)}
    error = IntegrityError("fk")
    error.__cause__ = ForeignKeyViolation("fk")
    middleware = AccountGoneMiddleware(lambda request: None)

    assert middleware.process_exception(request, error) is None
    assert middleware.process_exception(request, IntegrityError("unique")) is None
    # A call made with an API key (no session sign-in) is not signed out,
    # even once the account is gone.
    request.session = {}
    User.objects.filter(pk=user.pk).delete()
    assert middleware.process_exception(request, error) is None
