"""Sign-in mail goes through the job queue: the request only renders and
defers it, in the transaction that creates the link."""

import datetime as dt

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from accounts import services, tasks
from accounts.models import MagicLink
from core.models import AuditLog
from tests.accounts.factories import UserFactory
from tests.accounts.helpers import page_without_csrf
from tests.jobs import jobs_queued, jobs_run_queued

pytestmark = pytest.mark.django_db

TASK = "accounts.magic_link_mail_send"


def _post(client, email):
    return client.post("/accounts/login/", {"email": email})


@pytest.fixture
def addresses(db):
    known = UserFactory(email="known@example.com")
    deactivated = UserFactory(email="gone@example.com", is_active=False)
    return {
        "known": known.email,
        "unknown": "nobody-yet@example.com",
        "deactivated": deactivated.email,
    }


def test_the_request_sends_nothing_itself_and_queues_one_mail_job(client, addresses):
    response = _post(client, addresses["known"])

    assert response.status_code == 200
    assert mail.outbox == []
    [job] = jobs_queued(task_name=TASK)
    assert job.queue_name == "mail"
    link = MagicLink.objects.get()
    assert job.args["link_id"] == link.pk


def test_known_unknown_and_deactivated_get_the_same_page_and_one_job_each(
    client, addresses
):
    pages = {}
    for kind, email in addresses.items():
        response = _post(client, email)
        pages[kind] = (
            response.status_code,
            page_without_csrf(response.content.replace(email.encode(), b"<email>")),
        )
        assert len(jobs_queued(task_name=TASK)) == 1, kind
        jobs_run_queued()

    assert pages["known"] == pages["unknown"] == pages["deactivated"]
    # The worker decides: links for the known and the new address, nothing
    # for the deactivated account.
    assert sorted(m.to[0] for m in mail.outbox) == [
        addresses["known"],
        addresses["unknown"],
    ]


def test_the_link_secret_is_not_readable_in_the_job_arguments(client, addresses):
    _post(client, addresses["known"])
    [job] = jobs_queued(task_name=TASK)

    jobs_run_queued()

    secret_path = mail.outbox[0].body.split("/accounts/magic/", 1)[1].split()[0]
    assert secret_path.strip("/") not in str(job.args)
    assert addresses["known"] not in str(job.args)


def test_a_link_that_expired_while_the_mail_waited_is_not_sent(client, addresses):
    _post(client, addresses["known"])
    past = timezone.now() - dt.timedelta(minutes=11)
    MagicLink.objects.update(
        created_at=past, expires_at=past + dt.timedelta(minutes=10)
    )

    assert jobs_run_queued() == ["not sent: the link expired before the mail could go"]
    assert mail.outbox == []


def test_a_used_link_is_not_sent(client, addresses):
    _post(client, addresses["known"])
    MagicLink.objects.update(used_at=timezone.now())

    assert jobs_run_queued() == ["not sent: the link is gone or used"]


@pytest.mark.django_db(transaction=True)
def test_a_failure_after_the_inserts_leaves_neither_link_nor_job(client, monkeypatch):
    UserFactory(email="known@example.com")
    original = tasks.magic_link_mail_send.defer

    def defer_then_fail(**kwargs):
        original(**kwargs)
        raise RuntimeError("crash after the job row was written")

    monkeypatch.setattr(tasks.magic_link_mail_send, "defer", defer_then_fail)
    request = client.get("/").wsgi_request

    with pytest.raises(RuntimeError):
        services.magic_link_request(email="known@example.com", request=request)

    assert not MagicLink.objects.exists()
    assert jobs_queued() == []
    assert not AuditLog.objects.filter(action="magic_link_requested").exists()

    # And without the crash both commit together.
    monkeypatch.setattr(tasks.magic_link_mail_send, "defer", original)
    with transaction.atomic():
        services.magic_link_request(email="known@example.com", request=request)
    assert MagicLink.objects.count() == 1
    assert len(jobs_queued(task_name=TASK)) == 1
    # Committed, and Django's flush leaves Procrastinate's (unmanaged) tables
    # alone: remove the job so no later test finds an old queued mail.
    jobs_run_queued()


def test_allauth_mail_goes_through_the_queue_too(rf):
    from allauth.account.adapter import get_adapter

    get_adapter().send_mail(
        "account/email/unknown_account",
        "someone@example.com",
        {"email": "someone@example.com", "request": rf.get("/")},
    )

    assert mail.outbox == []
    [job] = jobs_queued(task_name="core.mail_send")
    assert "someone@example.com" not in str(job.args)
    jobs_run_queued()
    assert mail.outbox[0].to == ["someone@example.com"]
