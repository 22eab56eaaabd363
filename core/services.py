from __future__ import annotations

import datetime as dt
import json
import logging

from allauth.account.adapter import get_adapter as get_account_adapter
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connection, models, transaction
from django.utils import timezone
from procrastinate.contrib.django import app as jobs_app
from procrastinate.contrib.django.models import ProcrastinateJob

from core.models import AuditLog, FeatureFlag, SystemMetric
from core.monitoring import (
    backend_lookup,
    backend_refusal,
    pid_parse,
    statistics_fresh,
)
from core.selectors import user_may_signal_backends

logger = logging.getLogger(__name__)

# Seed 003: the audit trail is kept seven years.
AUDIT_LOG_RETENTION_DAYS = 7 * 365 + 2

# django-hijack's session key: the ids of the admins impersonating in this
# session, the current one last (accounts.impersonation).
IMPERSONATOR_SESSION_KEY = "hijack_history"


def client_ip(request) -> str | None:
    """The client's address as allauth's rate limits see it: behind
    ``TRUSTED_PROXY_COUNT`` proxies, taken from X-Forwarded-For. None without a
    request or a valid address. Every IP the project records comes from here."""
    if request is None:
        return None
    try:
        return get_account_adapter().get_client_ip(request)
    except PermissionDenied:
        return None


def audit_log_record(
    *,
    action: str,
    actor=None,
    target: models.Model | None = None,
    changes: dict | None = None,
    request=None,
) -> AuditLog:
    """Append one row to the audit trail.

    ``actor`` is the user who acted (None for the system); ``target`` the record
    acted on. With a request, its client IP and user agent are kept too, and,
    while an admin impersonates the request's user, that admin (``changes``
    gains ``impersonated_by``): the row's actor is then the user, but the
    person acting was the admin.
    """
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    impersonator = _impersonator(request)
    if impersonator is not None and (actor is None or actor.pk != impersonator[0]):
        changes = {
            **(changes or {}),
            "impersonated_by": impersonator[1],
            "impersonated_by_id": impersonator[0],
        }
    return AuditLog.objects.create(
        action=action,
        actor=actor,
        actor_email=getattr(actor, "email", "") or "",
        target_type=target._meta.label if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:255] if target is not None else "",
        changes=changes or {},
        ip_address=client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "") if request else "")[:512],
    )


def _impersonator(request) -> tuple | None:
    """(id, email) of the admin impersonating in ``request``'s session, or None.
    One query, only in an impersonated session."""
    session = getattr(request, "session", None)
    history = session.get(IMPERSONATOR_SESSION_KEY) if session is not None else None
    if not history:
        return None
    user_model = get_user_model()
    pk = user_model._meta.pk.to_python(history[-1])
    email = (
        user_model._default_manager.filter(pk=pk)
        .values_list(user_model.get_email_field_name(), flat=True)
        .first()
    )
    return (pk, email or "")


# Fields whose values never enter the audit trail, whatever the model: a diff
# says "(changed)" instead. Matched as parts of the field's name, so
# ``token_hash`` or ``totp_secret`` are caught without being listed.
SECRET_FIELD_MARKERS = (
    "password",
    "secret",
    "token",
    "otp",
    "recovery_code",
    "session_key",
)
SECRET_CHANGED = "(changed)"  # noqa: S105 - the placeholder, not a secret


def _json_value(value):
    """``value`` as JSON data (datetimes as ISO text, decimals and UUIDs as
    text), the way the ``changes`` column stores it."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def model_snapshot(instance: models.Model, *, fields=None) -> dict:
    """The concrete field values of ``instance`` as JSON data, keyed by field
    name (a foreign key by its name, valued with the related id). The primary
    key (the audit row's ``target_id``) and ``auto_now`` dates (they change on
    every save and say nothing about what was changed) are left out.
    ``fields`` limits the snapshot to those names."""
    snapshot = {}
    for field in instance._meta.concrete_fields:
        if field.primary_key or getattr(field, "auto_now", False):
            continue
        if fields is not None and field.name not in fields:
            continue
        snapshot[field.name] = _json_value(getattr(instance, field.attname))
    return snapshot


def _is_secret(name: str, secret_fields) -> bool:
    return name in secret_fields or any(m in name for m in SECRET_FIELD_MARKERS)


def field_changes(before: dict, after: dict, *, secret_fields=()) -> dict:
    """What differs between two snapshots, as the audit trail records it:
    ``{"field": {"old": …, "new": …}}``. A field missing on one side (a row
    created or deleted) is ``None`` there. A secret field (``secret_fields``,
    or a name containing one of ``SECRET_FIELD_MARKERS``) is recorded as
    ``"(changed)"``, never with its values."""
    changes = {}
    for name in [*before, *(n for n in after if n not in before)]:
        old, new = _json_value(before.get(name)), _json_value(after.get(name))
        if old == new:
            continue
        if _is_secret(name, secret_fields):
            changes[name] = SECRET_CHANGED
        else:
            changes[name] = {"old": old, "new": new}
    return changes


def audit_log_changes(
    *,
    action: str,
    actor,
    target: models.Model,
    before: dict,
    after: dict,
    secret_fields=(),
    request=None,
) -> AuditLog | None:
    """Record one audit row with the fields that differ between the snapshots
    ``before`` and ``after`` (:func:`model_snapshot`); nothing when none do.
    The staff edits of every app go through here."""
    changes = field_changes(before, after, secret_fields=secret_fields)
    if not changes:
        return None
    return audit_log_record(
        action=action, actor=actor, target=target, changes=changes, request=request
    )


def audit_log_prune(*, now: dt.datetime | None = None, batch_size: int = 10_000) -> int:
    """Delete audit rows older than seven years; return how many went.

    Deletes in batches by primary key so a large backlog never holds one huge
    lock or transaction; the ``auditlog_created_idx`` index finds the old rows.
    """
    cutoff = (now or timezone.now()) - dt.timedelta(days=AUDIT_LOG_RETENTION_DAYS)
    deleted = 0
    while True:
        ids = list(
            AuditLog.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[
                :batch_size
            ]
        )
        if not ids:
            return deleted
        count, _ = AuditLog.objects.filter(pk__in=ids).delete()
        deleted += count


def metric_record(
    *,
    metric: str,
    value: float,
    tags: dict | None = None,
    timestamp: dt.datetime | None = None,
) -> SystemMetric:
    """Store one measurement of ``metric``."""
    return SystemMetric.objects.create(
        metric=metric,
        value=float(value),
        tags=tags or {},
        timestamp=timestamp or timezone.now(),
    )


def metric_prune(
    *,
    days: int | None = None,
    now: dt.datetime | None = None,
    batch_size: int = 10_000,
) -> int:
    """Delete SystemMetric rows measured more than ``days`` ago (default
    ``METRIC_RETENTION_DAYS``); return how many went.

    One ``DELETE … WHERE id IN (SELECT id … ORDER BY timestamp LIMIT n)`` per
    batch, each its own transaction (autocommit), oldest first along
    ``systemmetric_time_idx``: a backlog never holds one long lock, and an
    interrupted run resumes where it stopped.
    """
    days = settings.METRIC_RETENTION_DAYS if days is None else days
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    oldest = SystemMetric.objects.filter(timestamp__lt=cutoff).order_by(
        "timestamp", "id"
    )
    return rows_delete_in_batches(oldest, batch_size=batch_size)


def rows_delete_in_batches(queryset, *, batch_size: int = 10_000) -> int:
    """Delete ``queryset``'s rows ``batch_size`` at a time, in its order, each
    batch its own statement (``DELETE … WHERE id IN (SELECT id … LIMIT n)``),
    so a retention backlog never holds one long lock; returns rows deleted.
    Shared by the retention jobs of every app."""
    model = queryset.model
    ids = queryset.values("pk")
    deleted = 0
    while True:
        count, _ = model.objects.filter(pk__in=ids[:batch_size]).delete()
        deleted += count
        if count < batch_size:
            return deleted


def _staff_check(actor) -> None:
    if actor is None or not getattr(actor, "is_staff", False):
        raise PermissionDenied("Only staff can do this.")


@transaction.atomic
def model_save_by_staff(
    *,
    instance: models.Model,
    actor,
    changed_fields=None,
    request=None,
    secret_fields=(),
) -> models.Model:
    """Save a row staff changed in the admin, for a model with no service of
    its own (allauth's email addresses, connected accounts, sessions), with one
    audit row of each changed field's old and new value: ``UPDATED``, the old
    side empty for a new row. ``changed_fields`` (the form's changed fields)
    limits the write to those, as ``save(update_fields=…)``."""
    _staff_check(actor)
    before = {}
    fields = None
    if not instance._state.adding:
        stored = type(instance)._default_manager.select_for_update().get(pk=instance.pk)
        fields = set(changed_fields) if changed_fields is not None else None
        before = model_snapshot(stored, fields=fields)
    if fields is None:
        instance.save()
    elif fields:
        touched = [
            f.name
            for f in instance._meta.concrete_fields
            if f.name in before or getattr(f, "auto_now", False)
        ]
        instance.save(update_fields=touched)
    audit_log_changes(
        action=AuditLog.Action.UPDATED,
        actor=actor,
        target=instance,
        before=before,
        after=model_snapshot(instance, fields=fields),
        secret_fields=secret_fields,
        request=request,
    )
    return instance


@transaction.atomic
def model_delete_by_staff(
    *, instance: models.Model, actor, request=None, secret_fields=()
) -> None:
    """Delete a row from the admin, for a model with no service of its own; the
    ``DELETED`` audit row keeps the values it had (secrets as "(changed)")."""
    _staff_check(actor)
    audit_log_changes(
        action=AuditLog.Action.DELETED,
        actor=actor,
        target=instance,
        before=model_snapshot(instance),
        after={},
        secret_fields=secret_fields,
        request=request,
    )
    instance.delete()


@transaction.atomic
def feature_flag_delete(*, flag: FeatureFlag, actor, request=None) -> None:
    """Delete a flag (its checks then answer "off"), recording its last values
    and allow-list."""
    _staff_check(actor)
    before = model_snapshot(flag)
    before["allowed_users"] = sorted(
        str(pk) for pk in flag.allowed_users.values_list("pk", flat=True)
    )
    audit_log_changes(
        action=AuditLog.Action.DELETED,
        actor=actor,
        target=flag,
        before=before,
        after={},
        request=request,
    )
    flag.delete()


@transaction.atomic
def feature_flag_save(
    *,
    flag: FeatureFlag,
    actor=None,
    request=None,
    allowed_users=None,
) -> FeatureFlag:
    """Create or update a feature flag and record what changed, old and new
    values (the allow-list as user ids), in one audit row; a save that changes
    nothing records nothing.

    ``allowed_users`` (an iterable of users) replaces the allow-list when given.
    """
    creating = flag._state.adding
    before = {}
    if not creating:
        # The row as stored, not ``flag``: the admin form has already written
        # the new values onto the instance.
        stored = FeatureFlag.objects.select_for_update().get(pk=flag.pk)
        before = model_snapshot(stored)
        if allowed_users is not None:
            before["allowed_users"] = sorted(
                str(pk) for pk in stored.allowed_users.values_list("pk", flat=True)
            )
    if (
        creating
        and flag.created_by_id is None
        and getattr(actor, "is_authenticated", False)
    ):
        flag.created_by = actor
    flag.full_clean()
    flag.save()
    after = model_snapshot(flag)
    if allowed_users is not None:
        flag.allowed_users.set(allowed_users)
        after["allowed_users"] = sorted(str(u.pk) for u in allowed_users)
        if creating:
            before["allowed_users"] = []
    audit_log_changes(
        action=AuditLog.Action.FLAG_CHANGED,
        actor=actor,
        target=flag,
        before=before,
        after=after,
        request=request,
    )
    return flag


# --- Database dashboard: metrics behind its charts, and its actions ------------------

DAY_METRIC_WINDOW_DAYS = 30
# Audit rows keep this much of a cancelled or terminated query's text.
AUDIT_QUERY_CHARS = 500


def health_metrics_record(
    *, database: dict, source: str, replica: dict | None = None
) -> list[SystemMetric]:
    """Record a health check's database numbers (``core.health.check_database``
    of a connected database): ``db.response_time_ms`` and ``db.connections``
    (client connections in use), and with a read replica that answered
    (``core.health.check_replica``) its lag as ``db.replica_lag_seconds``:
    the series the dashboard charts."""
    tags = {"source": source}
    rows = [
        metric_record(
            metric="db.response_time_ms",
            value=database["response_time_ms"],
            tags=tags,
        )
    ]
    used = (database.get("connections") or {}).get("used")
    if used is not None:
        rows.append(metric_record(metric="db.connections", value=used, tags=tags))
    lag = (
        (replica or {}).get("lag_seconds") if (replica or {}).get("connected") else None
    )
    if lag is not None:
        rows.append(
            metric_record(metric="db.replica_lag_seconds", value=lag, tags=tags)
        )
    return rows


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


@transaction.atomic
def metric_daily_counts_record(
    *,
    metric: str,
    queryset: models.QuerySet,
    field: str,
    days: int = DAY_METRIC_WINDOW_DAYS,
    now: dt.datetime | None = None,
) -> int:
    """Record how many rows of ``queryset`` fall on each UTC day by the
    datetime ``field``, as one SystemMetric row ``metric`` per day stamped at
    the day's midnight (tags ``{"complete": bool}``), for the ``days`` days
    ending today. Returns the number of days written.

    Days already recorded complete are not counted again; today (and any day
    missing, say after the worker was down) is recounted and replaced, so the
    run is safe to repeat and reads only the rows of days not yet complete,
    along an index on ``field``. The apps call it from their own periodic jobs
    (searches: searches per day; accounts: sign-ups per day): core does not
    know their models."""
    now = now or timezone.now()
    today = now.astimezone(dt.UTC).date()
    window = [today - dt.timedelta(days=days - 1 - i) for i in range(days)]
    complete = set(
        SystemMetric.objects.filter(
            metric=metric, timestamp__gte=_midnight(window[0]), tags__complete=True
        ).values_list("timestamp", flat=True)
    )
    todo = [day for day in window if _midnight(day) not in complete]
    if not todo:
        return 0
    counted = (
        queryset.filter(
            **{
                f"{field}__gte": _midnight(todo[0]),
                f"{field}__lt": _midnight(today + dt.timedelta(days=1)),
            }
        )
        .annotate(day=models.functions.TruncDate(field, tzinfo=dt.UTC))
        .values("day")
        .annotate(n=models.Count("pk"))
        .values_list("day", "n")
    )
    counts = dict(counted)
    SystemMetric.objects.filter(
        metric=metric, timestamp__in=[_midnight(day) for day in todo]
    ).delete()
    SystemMetric.objects.bulk_create(
        SystemMetric(
            metric=metric,
            value=float(counts.get(day, 0)),
            tags={"complete": day < today},
            timestamp=_midnight(day),
        )
        for day in todo
    )
    return len(todo)


_SIGNAL_WHERE = (
    " FROM pg_stat_activity a WHERE a.pid = %s AND a.backend_type = 'client backend'"
    " AND a.datname = current_database() AND a.pid <> pg_backend_pid()"
)
_BACKEND_SIGNALS = {
    "pg_cancel_backend": "SELECT pg_cancel_backend(a.pid)" + _SIGNAL_WHERE,
    "pg_terminate_backend": "SELECT pg_terminate_backend(a.pid)" + _SIGNAL_WHERE,
}


def _backend_signal(*, pid, actor, request, function: str, action: str) -> dict:
    if not user_may_signal_backends(actor):
        raise PermissionDenied("Only ADMINs may cancel or terminate queries.")
    value, pid = pid, pid_parse(pid)
    if pid is None:
        raise ValidationError(f"“{str(value)[:40]}” is not a process id.")
    with connection.cursor() as cursor:
        statistics_fresh(cursor)
        backend = backend_lookup(cursor, pid)
        refusal = backend_refusal(backend, pid)
        if refusal:
            raise ValidationError(refusal)
        # Checked again in the same statement that signals, so a pid reused
        # since the lookup is never signalled.
        try:
            # A savepoint: a refusal must not abort a surrounding transaction.
            with transaction.atomic():
                cursor.execute(_BACKEND_SIGNALS[function], [pid])
                row = cursor.fetchone()
        except DatabaseError as exc:
            raise ValidationError(
                f"PostgreSQL refused to signal pid {pid}: "
                f"{str(exc).strip().splitlines()[0]}"
            ) from exc
    if row is None or not row[0]:
        raise ValidationError(
            f"Process {pid} could not be signalled (it has probably just ended). "
            "Nothing was done."
        )
    query = backend["query"] or ""
    changes = {
        "pid": pid,
        "query": query[:AUDIT_QUERY_CHARS]
        + ("…" if len(query) > AUDIT_QUERY_CHARS else ""),
        "duration_seconds": (
            round(backend["duration"], 1) if backend["duration"] is not None else None
        ),
        "state": backend["state"],
        "application": backend["application"],
        "database_user": backend["user"],
    }
    audit_log_record(action=action, actor=actor, changes=changes, request=request)
    return changes


def query_cancel(*, pid, actor, request=None) -> dict:
    """Cancel the query running on client connection ``pid`` of this database
    (``pg_cancel_backend``: the statement fails with "canceling statement due
    to user request"; the connection stays). ADMINs only. Refuses this
    connection, PostgreSQL's own processes (autovacuum, WAL sender…) and
    other databases; a pid that is gone is a ``ValidationError`` saying so.
    Audit-logged with the pid, the query (truncated) and its duration;
    returns those."""
    return _backend_signal(
        pid=pid,
        actor=actor,
        request=request,
        function="pg_cancel_backend",
        action=AuditLog.Action.QUERY_CANCELLED,
    )


def query_terminate(*, pid, actor, request=None) -> dict:
    """Close client connection ``pid`` (``pg_terminate_backend``: its
    transaction rolls back and its client sees the connection drop). The same
    rules and audit row as :func:`query_cancel`."""
    return _backend_signal(
        pid=pid,
        actor=actor,
        request=request,
        function="pg_terminate_backend",
        action=AuditLog.Action.QUERY_TERMINATED,
    )


def statement_statistics_reset(*, actor, request=None) -> int:
    """Forget this database's pg_stat_statements entries
    (``pg_stat_statements_reset(0, <this database>, 0)``; other databases on
    the server keep theirs) so "slowest statements" starts over, e.g. after a
    deploy. ADMINs only; audit-logged with how many statements were
    discarded, which it returns. A ``ValidationError`` when the extension is
    not available."""
    if not user_may_signal_backends(actor):
        raise PermissionDenied("Only ADMINs may reset statement statistics.")
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_statements WHERE dbid ="
                " (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
            discarded = cursor.fetchone()[0]
            cursor.execute(
                "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database"
                " WHERE datname = current_database()), 0)"
            )
    except DatabaseError as exc:
        raise ValidationError(
            "The pg_stat_statements extension is not available, so there is "
            "nothing to reset: "
            f"{str(exc).strip().splitlines()[0]}"
        ) from exc
    audit_log_record(
        action=AuditLog.Action.STATEMENT_STATS_RESET,
        actor=actor,
        changes={"statements_discarded": discarded},
        request=request,
    )
    return discarded


# --- jobs (the admin's job list) ------------------------------------------------------

# What a staff action can change on a job, kept in its audit row (never the
# arguments: a mail job's are sealed, and they are not what staff changed).
JOB_AUDIT_FIELDS = ("status", "attempts", "abort_requested", "scheduled_at")


def _jobs_locked(job_ids, statuses):
    # job_ids as given: a queryset stays a subquery, so "select all" over a
    # long job list sends no IN list past the protocol's 65,535 parameters.
    return list(
        ProcrastinateJob.objects.select_for_update()
        .filter(pk__in=job_ids, status__in=statuses)
        .order_by("pk")
    )


def _job_audit(job, before: dict, *, actor, request) -> None:
    job.refresh_from_db(fields=JOB_AUDIT_FIELDS)
    audit_log_changes(
        action=AuditLog.Action.UPDATED,
        actor=actor,
        target=job,
        before=before,
        after=model_snapshot(job, fields=JOB_AUDIT_FIELDS),
        request=request,
    )


@transaction.atomic
def jobs_retry_failed_by_staff(*, job_ids, actor, request=None) -> int:
    """Queue the failed ones of ``job_ids`` again, now; one audit row per job
    (status failed → todo). Only failed jobs: retrying a running one would run
    it twice, and a dead worker's job is requeued by ``core.jobs_stalled_retry``."""
    _staff_check(actor)
    jobs = _jobs_locked(job_ids, ("failed",))
    for job in jobs:
        before = model_snapshot(job, fields=JOB_AUDIT_FIELDS)
        jobs_app.job_manager.retry_job_by_id(
            job.id, timezone.now(), job.priority, job.queue_name, job.lock
        )
        _job_audit(job, before, actor=actor, request=request)
    return len(jobs)


@transaction.atomic
def jobs_cancel_by_staff(*, job_ids, actor, abort: bool = False, request=None) -> int:
    """Cancel the queued ones of ``job_ids`` (``abort``: also ask running ones
    to stop, which a task honours at its next check); one audit row per job
    changed. Returns how many changed."""
    _staff_check(actor)
    changed = 0
    for job in _jobs_locked(job_ids, ("todo", "doing") if abort else ("todo",)):
        before = model_snapshot(job, fields=JOB_AUDIT_FIELDS)
        if jobs_app.job_manager.cancel_job_by_id(job.id, abort=abort):
            _job_audit(job, before, actor=actor, request=request)
            changed += 1
    return changed
