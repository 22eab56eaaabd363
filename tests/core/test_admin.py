import datetime as dt

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.mail import Mail
from core.models import AuditLog, FeatureFlag
from tests.core.factories import (
    AuditLogFactory,
    FeatureFlagFactory,
    SystemMetricFactory,
)
from tests.core.test_jobs import job_defer, job_finish, mail_job, queue_empty
from tests.jobs import jobs_queued


@pytest.mark.django_db
@pytest.mark.parametrize("rows", [1, 40])
def test_audit_log_changelist_query_count_does_not_grow(
    admin_client, admin_user, django_assert_max_num_queries, rows
):
    AuditLogFactory.create_batch(rows, actor=admin_user, actor_email=admin_user.email)
    url = reverse("admin:ops_auditlog_changelist")
    admin_client.get(url)

    with django_assert_max_num_queries(14):
        response = admin_client.get(url)

    assert response.status_code == 200
    # The rows are on the page (an empty list would pass the count trivially).
    listed = response.context["cl"].result_list
    assert sum(row.actor_email == admin_user.email for row in listed) >= rows


@pytest.mark.django_db
def test_audit_log_is_read_only_and_searches_any_part_of_the_email(
    admin_client, admin_user
):
    row = AuditLogFactory(actor=admin_user, actor_email="someone@example.com")
    AuditLogFactory(actor_email="other@example.com")

    change = admin_client.get(reverse("admin:ops_auditlog_change", args=[row.pk]))
    assert change.status_code == 200
    assert b'name="_save"' not in change.content
    assert admin_client.get(reverse("admin:ops_auditlog_add")).status_code == 403
    post = admin_client.post(reverse("admin:ops_auditlog_delete", args=[row.pk]))
    assert post.status_code == 403
    assert AuditLog.objects.filter(pk=row.pk).exists()

    found = admin_client.get(
        reverse("admin:ops_auditlog_changelist"), {"q": "someone@example.com"}
    )
    assert found.context["cl"].result_count == 1
    # Any part of it (issue #17: search like a person expects).
    partial = admin_client.get(reverse("admin:ops_auditlog_changelist"), {"q": "meon"})
    assert list(partial.context["cl"].result_list) == [row]


@pytest.mark.django_db
def test_admin_creates_feature_flag_through_the_service(admin_client, admin_user, user):
    response = admin_client.post(
        reverse("admin:ops_featureflag_add"),
        {
            "key": "new-thing",
            "description": "x",
            "enabled": "on",
            "rollout_percent": "25",
            "allowed_users": user.pk,
        },
    )

    assert response.status_code == 302, response.content
    flag = FeatureFlag.objects.get(key="new-thing")
    assert flag.created_by == admin_user
    assert list(flag.allowed_users.all()) == [user]
    audit = AuditLog.objects.get(action=AuditLog.Action.FLAG_CHANGED)
    assert audit.target_id == flag.pk and audit.actor == admin_user


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"key": "dup", "rollout_percent": "10"}, "already exists"),
        ({"key": "pct", "rollout_percent": "150"}, "less than or equal to 100"),
        ({"key": "bad key!", "rollout_percent": "1"}, "valid"),
    ],
)
def test_bad_flag_input_is_a_form_error_not_a_500(admin_client, data, message):
    FeatureFlagFactory(key="dup")

    response = admin_client.post(reverse("admin:ops_featureflag_add"), data)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert FeatureFlag.objects.count() == 1


@pytest.mark.django_db
def test_system_metric_admin_lists_metrics(admin_client):
    SystemMetricFactory(metric="db.response_time_ms", value=3.5)

    response = admin_client.get(reverse("admin:ops_systemmetric_changelist"))

    assert response.status_code == 200
    assert "db.response_time_ms" in response.content.decode()
    assert admin_client.get(reverse("admin:ops_systemmetric_add")).status_code == 403


@pytest.mark.django_db
def test_non_staff_cannot_open_ops_admin(user_client):
    for name in ("auditlog", "featureflag", "systemmetric"):
        response = user_client.get(reverse(f"admin:ops_{name}_changelist"))
        assert response.status_code == 302


@pytest.mark.django_db
def test_prune_audit_log_keeps_seven_years():
    now = timezone.now()
    old = AuditLogFactory()
    recent = AuditLogFactory()
    AuditLog.objects.filter(pk=old.pk).update(
        created_at=now - dt.timedelta(days=7 * 365 + 10)
    )
    AuditLog.objects.filter(pk=recent.pk).update(
        created_at=now - dt.timedelta(days=7 * 365 - 10)
    )
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("prune_audit_log", stdout=out)

    assert "Deleted 1 audit rows" in out.getvalue()
    assert list(AuditLog.objects.values_list("pk", flat=True)) == [recent.pk]


# --- jobs (Procrastinate's tables) ------------------------------------------------

JOBS = reverse("admin:procrastinate_procrastinatejob_changelist")


@pytest.fixture
def no_jobs(db):
    """No job committed by another test module on the pages."""
    queue_empty()


def _job(job_id: int) -> tuple[str, int, list[str]]:
    """``(status, attempts, event types)`` of a job."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status::text, attempts FROM procrastinate_jobs WHERE id = %s",
            [job_id],
        )
        status, attempts = cursor.fetchone()
        cursor.execute(
            "SELECT type::text FROM procrastinate_events WHERE job_id = %s ORDER BY id",
            [job_id],
        )
        return status, attempts, [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db
@pytest.mark.parametrize("rows", [1, 30])
def test_job_changelist_shows_a_failed_job_with_attempts_and_its_failure(
    no_jobs, admin_client, django_assert_max_num_queries, rows
):
    for _ in range(rows - 1):
        mail_job()
    failed = mail_job()
    job_finish(failed, "failed")
    admin_client.get(JOBS)

    # Session, user, the count (estimate), the queue filter's values, the page
    # of jobs and their events: 6 for 1 job or 30.
    with django_assert_max_num_queries(6):
        response = admin_client.get(JOBS)

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == rows
    html = response.content.decode()
    row = html.split(f">{failed}</a>", 1)[1].split("</tr>", 1)[0]
    assert "❌ Failed" in row  # the status
    summary = row.split('class="field-summary"', 1)[1]
    assert "Failed <strong" in " ".join(summary.split())  # its last event, when
    assert 'class="field-attempts">1<' in row
    assert "core.mail_send" in row
    only_failed = admin_client.get(JOBS, {"status__exact": "failed"})
    assert [job.pk for job in only_failed.context["cl"].result_list] == [failed]


@pytest.mark.django_db
def test_job_changelist_filters_by_queue_and_finds_a_job_by_id(no_jobs, admin_client):
    mail = mail_job()
    other = job_defer(task="core.other", queue="maintenance")

    by_queue = admin_client.get(JOBS, {"queue_name": "maintenance"})
    by_id = admin_client.get(JOBS, {"q": str(mail)})
    by_word = admin_client.get(JOBS, {"q": "mail"})

    assert [j.pk for j in by_queue.context["cl"].result_list] == [other]
    assert [j.pk for j in by_id.context["cl"].result_list] == [mail]
    assert list(by_word.context["cl"].result_list) == []


@pytest.mark.django_db
def test_retry_requeues_failed_jobs_and_leaves_running_ones(no_jobs, admin_client):
    failed = mail_job()
    job_finish(failed, "failed")
    running = mail_job()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", [running]
        )

    with CaptureQueriesContext(connection) as captured:
        response = admin_client.post(
            JOBS,
            {"action": "retry_failed", "_selected_action": [failed, running]},
            follow=True,
        )

    assert response.status_code == 200
    assert "1 failed job queued again" in response.content.decode()
    # The selection is locked through a subquery, not an IN list of every id
    # ("select all" over a long list would pass the protocol's parameter cap).
    [locking] = [q["sql"] for q in captured if q["sql"].endswith("FOR UPDATE")]
    assert '"procrastinate_jobs"."id" IN (SELECT' in locking
    status, attempts, events = _job(failed)
    assert (status, attempts) == ("todo", 2)
    assert events[-1] == "retried" and events[:3] == ["deferred", "started", "failed"]
    # Retrying a job a live worker runs would run it twice.
    assert _job(running)[:2] == ("doing", 0)


@pytest.mark.django_db
def test_job_actions_leave_an_audit_row_per_job_changed(
    no_jobs, admin_client, admin_user
):
    failed = mail_job()
    job_finish(failed, "failed")
    queued, other_queued, running = mail_job(), mail_job(), mail_job()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", [running]
        )

    admin_client.post(JOBS, {"action": "retry_failed", "_selected_action": [failed]})
    cancelled = admin_client.post(
        JOBS,
        {"action": "cancel_queued", "_selected_action": [queued, running]},
        follow=True,
    )
    aborted = admin_client.post(
        JOBS,
        {"action": "abort_jobs", "_selected_action": [other_queued, running]},
        follow=True,
    )

    assert "1 job cancelled" in cancelled.content.decode()
    assert "2 jobs asked to stop" in aborted.content.decode()
    assert _job(queued)[0] == "cancelled"
    rows = {
        int(row.target_id): row
        for row in AuditLog.objects.filter(target_type="procrastinate.ProcrastinateJob")
    }
    assert set(rows) == {failed, queued, other_queued, running}
    assert all(row.actor_id == admin_user.pk for row in rows.values())
    assert rows[failed].changes["status"] == {"old": "failed", "new": "todo"}
    assert rows[queued].changes["status"] == {"old": "todo", "new": "cancelled"}
    assert rows[running].changes["abort_requested"] == {"old": False, "new": True}
    # Nothing about the job's (sealed) arguments.
    assert all("args" not in row.changes for row in rows.values())


@pytest.mark.django_db
def test_retry_of_no_failed_job_says_so(no_jobs, admin_client):
    queued = mail_job()

    response = admin_client.post(
        JOBS, {"action": "retry_failed", "_selected_action": [queued]}, follow=True
    )

    assert "only failed jobs can be retried" in response.content.decode()
    assert _job(queued)[:2] == ("todo", 0)


@pytest.mark.django_db
def test_the_sign_in_mail_job_shows_neither_the_link_nor_the_address(
    no_jobs, admin_client
):
    email = "private-person@example.com"
    Client().post("/accounts/login/", {"email": email})
    [job] = jobs_queued(task_name="accounts.magic_link_mail_send")
    body = Mail.unseal(job.args["sealed"]).body
    secret = body.split("/accounts/magic/", 1)[1].split()[0].strip("/")

    listing = admin_client.get(JOBS).content.decode()
    detail = admin_client.get(
        reverse("admin:procrastinate_procrastinatejob_change", args=[job.pk])
    ).content.decode()

    for page in (listing, detail):
        assert job.args["sealed"][:20] in page  # the arguments are shown…
        assert secret not in page  # …sealed: no link
        assert email not in page  # and no address


@pytest.mark.django_db
def test_the_job_admin_is_read_only_and_staff_only(no_jobs, admin_client, client, user):
    job_id = mail_job()
    change = reverse("admin:procrastinate_procrastinatejob_change", args=[job_id])

    page = admin_client.get(change)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert (
        admin_client.get(
            reverse("admin:procrastinate_procrastinatejob_add")
        ).status_code
        == 403
    )

    client.force_login(user)
    assert client.get(JOBS).status_code == 302
