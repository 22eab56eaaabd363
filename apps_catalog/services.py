"""Every write to the app catalog.

Views, the admin and the seed call these functions; none of them saves a
catalog model directly. Each write is one statement: the field rules run in
Python first, the database's named constraints (unique domain, "not blank"
checks, price rules) are enforced by the INSERT or UPDATE itself, and a
violation becomes the same ``ValidationError`` ``full_clean()`` would give,
so a form shows it on the same field (see :func:`_validated_save`).
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Count, F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps_catalog.models import (
    TRASH_RETENTION,
    App,
    MonetizationModel,
    Post,
    Requirement,
)
from core.models import AuditLog
from core.services import audit_log_changes, model_delete_by_staff, model_snapshot

STALE_REQUIREMENT_MESSAGE = (
    "This requirement was changed by someone else; reload and try again."
)
TRASH_EXPIRED_MESSAGE = (
    "This app was deleted more than {days} days ago and can no longer be "
    "restored by its owner. Contact support if you need it back."
)
FORK_SUFFIX = " (fork)"


# --- helpers ------------------------------------------------------------------


def _constraint_error(model: type[models.Model], exc: IntegrityError):
    """The ValidationError a form shows for ``exc`` (same field, message and
    code as ``full_clean()`` gives), or None if it is not one of ``model``'s
    named constraints."""
    diag = getattr(exc.__cause__, "diag", None)
    name = getattr(diag, "constraint_name", None)
    for constraint in model._meta.constraints:
        if constraint.name == name:
            error = ValidationError(
                constraint.get_violation_error_message(),
                code=constraint.violation_error_code,
            )
            field = getattr(model, "CONSTRAINT_FIELDS", {}).get(name)
            return ValidationError({field: [error]}) if field else error
    return None


def _field_checks(instance: models.Model) -> None:
    """``full_clean()`` without its queries: the field rules (length, choices,
    blank, validators) run in Python, an unset foreign key included. A set one
    is not looked up, since the caller passed the row it points to (a row
    deleted meanwhile is refused by the database's foreign key at commit), and
    the unique and check constraints are enforced by the write itself
    (:func:`_constraint_errors`)."""
    related_set = [
        field.name
        for field in instance._meta.concrete_fields
        if field.is_relation and getattr(instance, field.attname) is not None
    ]
    instance.full_clean(
        exclude=related_set, validate_unique=False, validate_constraints=False
    )


@contextmanager
def _constraint_errors(model: type[models.Model], *, savepoint: bool):
    """Run the write in the block and turn a violation of one of ``model``'s
    named constraints into the form's ValidationError.

    ``savepoint``: the caller may carry on in its transaction after the
    refusal (a service without a transaction of its own, called from a test,
    the seed or another service's transaction), so the failed statement must
    not abort that transaction. It costs a SAVEPOINT / RELEASE pair, sent only
    inside a transaction: in autocommit the failed statement rolls back alone.
    A service with its own transaction passes False: the error leaves that
    transaction, which is rolled back (to its own savepoint if nested).
    """
    guard = (
        transaction.atomic()
        if savepoint and connection.in_atomic_block
        else nullcontext()
    )
    try:
        with guard:
            yield
    except IntegrityError as exc:
        error = _constraint_error(model, exc)
        if error is None:
            raise
        raise error from exc


def _validated_save(
    instance: models.Model, *, savepoint: bool, update_fields=None
) -> None:
    """Validate and save ``instance`` in one statement (INSERT or UPDATE): see
    :func:`_field_checks` and :func:`_constraint_errors` (``savepoint``)."""
    _field_checks(instance)
    with _constraint_errors(type(instance), savepoint=savepoint):
        instance.save(update_fields=update_fields)


def _ensure_editor(app: App, actor, *, by_staff: bool = False) -> None:
    """Only the owner changes an app, or staff when the admin says it acts as
    staff (``by_staff``): a page an ADMIN opens as a user edits only their own
    apps."""
    if actor is None:
        raise PermissionDenied("Only the app's owner can change it.")
    if actor.pk == app.owner_id or (by_staff and actor.is_staff):
        return
    raise PermissionDenied("Only the app's owner can change it.")


def _ensure_staff(actor) -> None:
    if actor is None or not actor.is_staff:
        raise PermissionDenied("Only staff can do this.")


def _staff_fields_check(changes: dict, allowed: frozenset) -> None:
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ValidationError(f"These fields cannot be set here: {', '.join(unknown)}.")


def _created_by_staff(instance: models.Model, *, actor, request) -> None:
    """Save a row staff added in the admin; one audit row lists its values."""
    _ensure_staff(actor)
    _validated_save(instance, savepoint=False)  # inside the *_by_staff transaction
    audit_log_changes(
        action=AuditLog.Action.UPDATED,
        actor=actor,
        target=instance,
        before={},
        after=model_snapshot(instance),
        request=request,
    )


def _updated_by_staff(
    instance: models.Model, *, stored: models.Model, actor, before: dict, request
) -> None:
    """Save ``stored`` (the locked row, changed) with the fields that differ
    from ``before``, record them, and show the stored values on ``instance``
    (the admin's object)."""
    after = model_snapshot(stored)
    written = [name for name in after if after[name] != before.get(name)]
    if written:
        # Inside the *_by_staff transaction: no savepoint of its own.
        _validated_save(stored, savepoint=False, update_fields=[*written, "updated_at"])
    audit_log_changes(
        action=AuditLog.Action.UPDATED,
        actor=actor,
        target=stored,
        before=before,
        after=after,
        request=request,
    )
    for field in stored._meta.concrete_fields:
        setattr(instance, field.attname, getattr(stored, field.attname))


def _normalise_domain(domain: str | None) -> str | None:
    domain = (domain or "").strip().lower().rstrip(".")
    return domain or None


def _status_locked(app: App) -> bool:
    """Re-read ``app.status`` (and its trash date) under a row lock (inside a
    transaction), so two requests that loaded the same app cannot both act on
    its old status (and move the parent's ``fork_count`` twice). False if the
    row is gone."""
    row = (
        App.objects.select_for_update()
        .filter(pk=app.pk)
        .values_list("status", "deleted_at")
        .first()
    )
    if row is None:
        return False
    app.status, app.deleted_at = row
    return True


def _restorable_by_owner(app: App, *, now=None) -> bool:
    """A deleted app is in its owner's trash for ``TRASH_RETENTION``; an app
    without a deletion date (older rows, bulk loads) is past it."""
    if app.status != App.Status.DELETED:
        return True
    if app.deleted_at is None:
        return False
    return app.deleted_at >= (now or timezone.now()) - TRASH_RETENTION


def _parent_fork_count_add(app: App, delta: int) -> None:
    if app.forked_from_id:
        App.objects.filter(pk=app.forked_from_id).update(
            fork_count=F("fork_count") + delta
        )


# --- apps ---------------------------------------------------------------------


def app_create(
    *,
    owner,
    name: str,
    description: str = "",
    domain: str | None = None,
    status: str = App.Status.DRAFT,
) -> App:
    """Create an app owned by ``owner`` (DRAFT unless published straight away)."""
    if status not in (App.Status.DRAFT, App.Status.ACTIVE):
        raise ValidationError({"status": "A new app is either a draft or active."})
    app = App(
        owner=owner,
        name=(name or "").strip(),
        description=(description or "").strip(),
        domain=_normalise_domain(domain),
        status=status,
    )
    _validated_save(app, savepoint=True)
    return app


@transaction.atomic
def app_update(
    *,
    app: App,
    actor,
    name: str,
    description: str = "",
    domain: str | None = None,
    status: str | None = None,
) -> App:
    """Change an app's details; status moves between DRAFT, ACTIVE and ARCHIVED
    (soft deletion goes through :func:`app_delete`)."""
    _ensure_editor(app, actor)
    _status_locked(app)
    if status is not None:
        if status == App.Status.DELETED or app.status == App.Status.DELETED:
            raise ValidationError(
                {"status": "Use delete and restore to remove or bring back an app."}
            )
        app.status = status
    app.name = (name or "").strip()
    app.description = (description or "").strip()
    app.domain = _normalise_domain(domain)
    _validated_save(
        app,
        savepoint=False,  # app_update's own transaction is rolled back
        update_fields=["name", "description", "domain", "status", "updated_at"],
    )
    return app


def _app_status_set(*, app: App, actor, status: str, action: str, request=None) -> App:
    fields = ("status", "deleted_at")
    before = model_snapshot(app, fields=fields)
    app.status = status
    # The trash date lives exactly as long as the DELETED status.
    app.deleted_at = timezone.now() if status == App.Status.DELETED else None
    app.save(update_fields=[*fields, "updated_at"])
    audit_log_changes(
        action=action,
        actor=actor,
        target=app,
        before=before,
        after=model_snapshot(app, fields=fields),
        request=request,
    )
    return app


def _app_status_move(app: App, status: str) -> None:
    """Set ``app.status`` (read under lock) to ``status`` with what goes with
    it: the parent's fork count leaves and re-enters with the DELETED status,
    and the trash date lives exactly as long as it."""
    if status == app.status:
        return
    if status == App.Status.DELETED:
        _parent_fork_count_add(app, -1)
        app.deleted_at = timezone.now()
    elif app.status == App.Status.DELETED:
        _parent_fork_count_add(app, +1)
        app.deleted_at = None
    app.status = status


@transaction.atomic
def app_archive(*, app: App, actor, by_staff: bool = False, request=None) -> App:
    """Hide an app from the catalog but keep it (and its forks) as it is."""
    _ensure_editor(app, actor, by_staff=by_staff)
    _status_locked(app)
    if app.status == App.Status.DELETED:
        raise ValidationError("A deleted app cannot be archived; restore it first.")
    if app.status == App.Status.ARCHIVED:
        return app
    return _app_status_set(
        app=app,
        actor=actor,
        status=App.Status.ARCHIVED,
        action=AuditLog.Action.UPDATED,
        request=request,
    )


@transaction.atomic
def app_delete(*, app: App, actor, by_staff: bool = False, request=None) -> App:
    """Soft delete: status DELETED, hidden everywhere but the admin. Forks stay;
    the parent's fork count drops by one."""
    _ensure_editor(app, actor, by_staff=by_staff)
    _status_locked(app)
    if app.status == App.Status.DELETED:
        return app
    _parent_fork_count_add(app, -1)
    return _app_status_set(
        app=app,
        actor=actor,
        status=App.Status.DELETED,
        action=AuditLog.Action.DELETED,
        request=request,
    )


@transaction.atomic
def app_restore(*, app: App, actor, by_staff: bool = False, request=None) -> App:
    """Bring back an archived app (as ACTIVE) or a deleted one (as DRAFT, so its
    owner decides when it is public again). The owner may bring a deleted app
    back for ``TRASH_RETENTION`` after its deletion; staff (``by_staff``, from
    the admin) at any time."""
    _ensure_editor(app, actor, by_staff=by_staff)
    _status_locked(app)
    if not by_staff and not _restorable_by_owner(app):
        raise ValidationError(
            TRASH_EXPIRED_MESSAGE.format(days=TRASH_RETENTION.days),
            code="trash_expired",
        )
    if app.status == App.Status.ARCHIVED:
        status = App.Status.ACTIVE
    elif app.status == App.Status.DELETED:
        status = App.Status.DRAFT
        _parent_fork_count_add(app, +1)
    else:
        return app
    return _app_status_set(
        app=app,
        actor=actor,
        status=status,
        action=AuditLog.Action.UPDATED,
        request=request,
    )


# What staff may set on an app in the admin (the parent and fork count are the
# fork services' business).
APP_STAFF_FIELDS = frozenset({"name", "description", "owner", "status", "domain"})


@transaction.atomic
def app_create_by_staff(*, app: App, actor, request=None) -> App:
    """Save an app staff added in the admin, in any status (a DELETED one with
    its trash date), with one audit row listing its values."""
    app.name = (app.name or "").strip()
    app.description = (app.description or "").strip()
    app.domain = _normalise_domain(app.domain)
    app.deleted_at = timezone.now() if app.status == App.Status.DELETED else None
    _created_by_staff(app, actor=actor, request=request)
    return app


@transaction.atomic
def app_update_by_staff(*, app: App, actor, changes: dict, request=None) -> App:
    """Apply ``changes`` (field name → new value) staff made to ``app`` in the
    admin, with one audit row holding each changed field's old and new value.

    Any status may be set: moving into or out of DELETED changes the parent's
    fork count and the trash date as :func:`app_delete` and
    :func:`app_restore` do (under the same row lock). Only the fields that
    differ are written."""
    _ensure_staff(actor)
    _staff_fields_check(changes, APP_STAFF_FIELDS)
    stored = App.objects.select_for_update().filter(pk=app.pk).first()
    if stored is None:
        raise ValidationError("This app no longer exists.")
    before = model_snapshot(stored)
    if "status" in changes:
        if changes["status"] not in App.Status.values:
            raise ValidationError({"status": "Unknown status."})
        _app_status_move(stored, changes["status"])
    if "name" in changes:
        stored.name = (changes["name"] or "").strip()
    if "description" in changes:
        stored.description = (changes["description"] or "").strip()
    if "domain" in changes:
        stored.domain = _normalise_domain(changes["domain"])
    if "owner" in changes:
        stored.owner = changes["owner"]
    _updated_by_staff(app, stored=stored, actor=actor, before=before, request=request)
    return app


@transaction.atomic
def app_destroy(*, app: App, actor, request=None) -> None:
    """Hard delete (admin only): requirements, monetization models and posts go
    with it; its forks stay, with ``forked_from`` cleared. The audit row keeps
    the app's values."""
    if actor is None or not actor.is_staff:
        raise PermissionDenied("Only staff can delete an app for good.")
    if not _status_locked(app):
        return
    if app.status != App.Status.DELETED:
        _parent_fork_count_add(app, -1)
    audit_log_changes(
        action=AuditLog.Action.DELETED,
        actor=actor,
        target=app,
        before=model_snapshot(app),
        after={},
        request=request,
    )
    app.delete()


def _fork_name(name: str) -> str:
    """A fork's default name says it is one: "Habits" → "Habits (fork)". A fork
    of a fork keeps a single suffix (the fork path shows the lineage), and a
    long name is cut so the suffix still fits ``App.name``."""
    base = (name or "").strip()
    if base.endswith(FORK_SUFFIX):
        base = base[: -len(FORK_SUFFIX)].rstrip()
    limit = App._meta.get_field("name").max_length - len(FORK_SUFFIX)
    if len(base) > limit:
        base = base[: limit - 1].rstrip() + "…"
    return base + FORK_SUFFIX


def _fork_insert(fork: App) -> None:
    """INSERT ``fork`` in one statement (see :func:`_validated_save`): the owner
    and parent were just checked by the caller and the id is fresh.

    No savepoint: the caller's transaction is rolled back on any error, so the
    failed INSERT leaves nothing to recover from.
    """
    _field_checks(fork)
    with _constraint_errors(App, savepoint=False):
        fork.save(force_insert=True)


@transaction.atomic
def app_fork(*, app: App, actor) -> App:
    """Copy ``app`` with its requirements and monetization models for ``actor``.

    One transaction: a failure half-way leaves no fork behind. The fork is a
    DRAFT owned by ``actor``, named "<name> (fork)" (see :func:`_fork_name`),
    without the domain (domains are unique), and the parent's ``fork_count``
    goes up by one.

    Seven statements inside the transaction (the visibility check, one INSERT
    per table, a SELECT per copied table and the count's UPDATE): fields are
    checked in Python and the named constraints by the INSERT itself (see
    :func:`_fork_insert`).
    """
    if actor is None or not actor.is_authenticated:
        raise PermissionDenied("Sign in to fork an app.")
    if not App.objects.visible_to(actor).filter(pk=app.pk).exists():
        # A DRAFT, ARCHIVED or DELETED app of someone else cannot be forked.
        raise PermissionDenied("This app cannot be forked.")
    fork = App(
        owner=actor,
        forked_from=app,
        name=_fork_name(app.name),
        description=app.description,
        status=App.Status.DRAFT,
        domain=None,
    )
    _fork_insert(fork)
    Requirement.objects.bulk_create(
        [
            Requirement(app=fork, **row)
            for row in app.requirements.order_by("created_at", "id").values(
                "description", "priority", "status"
            )
        ]
    )
    MonetizationModel.objects.bulk_create(
        [
            MonetizationModel(app=fork, **row)
            for row in app.monetization_models.order_by("created_at", "id").values(
                "type", "price", "subscription_interval", "features"
            )
        ]
    )
    App.objects.filter(pk=app.pk).update(fork_count=F("fork_count") + 1)
    return fork


@transaction.atomic
def app_fork_counts_release(*, user) -> int:
    """Run before ``user`` is deleted for good (GDPR; registered as an
    ``accounts.hooks`` before-deletion hook): their live forks stop counting
    towards their parents' ``fork_count``. Returns parents updated."""
    per_parent = (
        App.objects.filter(owner=user, forked_from__isnull=False)
        .exclude(status=App.Status.DELETED)
        .exclude(forked_from__owner=user)  # those parents go too
        .order_by()
        .values("forked_from")
        .annotate(n=Count("pk"))
    )
    updated = 0
    for row in per_parent:
        updated += App.objects.filter(pk=row["forked_from"]).update(
            fork_count=F("fork_count") - row["n"]
        )
    return updated


@transaction.atomic
def app_fork_counts_recompute(*, actor=None, request=None) -> int:
    """Rewrite every ``fork_count`` that drifted (a user deleted with their
    forks, raw SQL); returns the number of apps corrected. With an ``actor``
    (staff, from the admin) each corrected app gets an audit row with its old
    and new count."""
    live_forks = (
        App.objects.filter(forked_from=OuterRef("pk"))
        .exclude(status=App.Status.DELETED)
        .order_by()
        .values("forked_from")
        .annotate(n=Count("pk"))
        .values("n")
    )
    actual = Coalesce(Subquery(live_forks), 0)
    drifted = App.objects.annotate(actual=actual).exclude(fork_count=F("actual"))
    if actor is None:
        return drifted.update(fork_count=actual)
    _ensure_staff(actor)
    apps = list(drifted.select_for_update(of=("self",)).only("name", "fork_count"))
    for app in apps:
        before = {"fork_count": app.fork_count}
        App.objects.filter(pk=app.pk).update(fork_count=app.actual)
        audit_log_changes(
            action=AuditLog.Action.UPDATED,
            actor=actor,
            target=app,
            before=before,
            after={"fork_count": app.actual},
            request=request,
        )
    return len(apps)


# --- requirements -------------------------------------------------------------


def requirement_create(
    *,
    app: App,
    actor,
    description: str,
    priority: str = Requirement.Priority.MEDIUM,
    status: str = Requirement.Status.PENDING,
) -> Requirement:
    _ensure_editor(app, actor)
    requirement = Requirement(
        app=app,
        description=(description or "").strip(),
        priority=priority,
        status=status,
    )
    _validated_save(requirement, savepoint=True)
    return requirement


def _requirement_write(
    *, requirement: Requirement, expected_version: int, savepoint: bool, **changes
) -> Requirement:
    """One ``UPDATE … WHERE id = ? AND version = ?``: a concurrent edit that got
    there first leaves 0 rows updated, and this edit is refused (not lost).
    The same statement enforces the check constraints (see
    :func:`_validated_save`, also for ``savepoint``)."""
    for field, value in changes.items():
        setattr(requirement, field, value)
    _field_checks(requirement)
    now = timezone.now()
    with _constraint_errors(Requirement, savepoint=savepoint):
        updated = Requirement.objects.filter(
            pk=requirement.pk, version=expected_version
        ).update(**changes, version=F("version") + 1, updated_at=now)
    if not updated:
        raise ValidationError(STALE_REQUIREMENT_MESSAGE, code="stale")
    requirement.version = expected_version + 1
    requirement.updated_at = now
    return requirement


def requirement_update(
    *,
    requirement: Requirement,
    actor,
    expected_version: int,
    description: str,
    priority: str,
    status: str | None = None,
) -> Requirement:
    """Edit a requirement made against ``expected_version`` (what the editor
    loaded); the version goes up by one."""
    _ensure_editor(requirement.app, actor)
    changes = {"description": (description or "").strip(), "priority": priority}
    if status is not None:
        changes["status"] = status
    return _requirement_write(
        requirement=requirement,
        expected_version=expected_version,
        savepoint=True,
        **changes,
    )


def requirement_set_status(
    *,
    requirement: Requirement,
    actor,
    status: str,
    expected_version: int | None = None,
) -> Requirement:
    """Move a requirement on the board; also a versioned edit."""
    _ensure_editor(requirement.app, actor)
    if expected_version is None:
        expected_version = requirement.version
    return _requirement_write(
        requirement=requirement,
        expected_version=expected_version,
        savepoint=True,
        status=status,
    )


def requirement_delete(*, requirement: Requirement, actor) -> None:
    _ensure_editor(requirement.app, actor)
    requirement.delete()


REQUIREMENT_STAFF_FIELDS = frozenset({"app", "description", "priority", "status"})


@transaction.atomic
def requirement_create_by_staff(
    *, requirement: Requirement, actor, request=None
) -> Requirement:
    """Save a requirement staff added in the admin (also inline on an app)."""
    requirement.description = (requirement.description or "").strip()
    _created_by_staff(requirement, actor=actor, request=request)
    return requirement


@transaction.atomic
def requirement_update_by_staff(
    *,
    requirement: Requirement,
    actor,
    changes: dict,
    expected_version: int,
    request=None,
) -> Requirement:
    """Staff's edit from the admin: a versioned write like the owner's (the
    version goes up, so an owner's open editor becomes stale instead of
    overwriting it), with one audit row of old and new values."""
    _ensure_staff(actor)
    _staff_fields_check(changes, REQUIREMENT_STAFF_FIELDS)
    stored = Requirement.objects.filter(pk=requirement.pk).first()
    if stored is None:
        raise ValidationError("This requirement no longer exists.")
    before = model_snapshot(stored)
    changes = dict(changes)
    if "description" in changes:
        changes["description"] = (changes["description"] or "").strip()
    changes = {k: v for k, v in changes.items() if getattr(stored, k) != v}
    if changes:
        _requirement_write(
            requirement=stored,
            expected_version=expected_version,
            savepoint=False,  # this service's transaction is rolled back
            **changes,
        )
    audit_log_changes(
        action=AuditLog.Action.UPDATED,
        actor=actor,
        target=stored,
        before=before,
        after=model_snapshot(stored),
        request=request,
    )
    for field in Requirement._meta.concrete_fields:
        setattr(requirement, field.attname, getattr(stored, field.attname))
    return requirement


@transaction.atomic
def requirement_delete_by_staff(
    *, requirement: Requirement, actor, request=None
) -> None:
    model_delete_by_staff(instance=requirement, actor=actor, request=request)


# --- monetization models ------------------------------------------------------


def _clean_features(features) -> list[str]:
    if isinstance(features, str):
        features = features.splitlines()
    seen: list[str] = []
    for feature in features or []:
        feature = feature.strip()
        if feature and feature not in seen:
            seen.append(feature)
    return seen


def monetization_create(
    *,
    app: App,
    actor,
    type: str,
    price: Decimal | None = None,
    subscription_interval: str = "",
    features=(),
) -> MonetizationModel:
    _ensure_editor(app, actor)
    model = MonetizationModel(
        app=app,
        type=type,
        price=price,
        subscription_interval=subscription_interval or "",
        features=_clean_features(features),
    )
    _validated_save(model, savepoint=True)
    return model


def monetization_update(
    *,
    model: MonetizationModel,
    actor,
    type: str,
    price: Decimal | None = None,
    subscription_interval: str = "",
    features=(),
) -> MonetizationModel:
    _ensure_editor(model.app, actor)
    model.type = type
    model.price = price
    model.subscription_interval = subscription_interval or ""
    model.features = _clean_features(features)
    _validated_save(
        model,
        savepoint=True,
        update_fields=[
            "type",
            "price",
            "subscription_interval",
            "features",
            "updated_at",
        ],
    )
    return model


def monetization_delete(*, model: MonetizationModel, actor) -> None:
    _ensure_editor(model.app, actor)
    model.delete()


MONETIZATION_STAFF_FIELDS = frozenset(
    {"app", "type", "price", "subscription_interval", "features"}
)


@transaction.atomic
def monetization_create_by_staff(
    *, model: MonetizationModel, actor, request=None
) -> MonetizationModel:
    """Save a monetization model staff added in the admin (also inline)."""
    model.subscription_interval = model.subscription_interval or ""
    model.features = _clean_features(model.features)
    _created_by_staff(model, actor=actor, request=request)
    return model


@transaction.atomic
def monetization_update_by_staff(
    *, model: MonetizationModel, actor, changes: dict, request=None
) -> MonetizationModel:
    """Staff's edit from the admin, with one audit row of old and new values."""
    _ensure_staff(actor)
    _staff_fields_check(changes, MONETIZATION_STAFF_FIELDS)
    stored = MonetizationModel.objects.select_for_update().filter(pk=model.pk).first()
    if stored is None:
        raise ValidationError("This monetization model no longer exists.")
    before = model_snapshot(stored)
    for field, value in changes.items():
        setattr(stored, field, value)
    stored.subscription_interval = stored.subscription_interval or ""
    stored.features = _clean_features(stored.features)
    _updated_by_staff(model, stored=stored, actor=actor, before=before, request=request)
    return model


@transaction.atomic
def monetization_delete_by_staff(
    *, model: MonetizationModel, actor, request=None
) -> None:
    model_delete_by_staff(instance=model, actor=actor, request=request)


# --- posts --------------------------------------------------------------------


def post_create(
    *,
    author,
    title: str,
    content: str = "",
    published: bool = False,
    app: App | None = None,
) -> Post:
    """A post by ``author``, optionally about one of their apps."""
    if app is not None:
        _ensure_editor(app, author)
    post = Post(
        author=author,
        app=app,
        title=(title or "").strip(),
        content=(content or "").strip(),
        published=published,
    )
    _validated_save(post, savepoint=True)
    return post


def _ensure_author(post: Post, actor) -> None:
    # Staff change posts from the admin, through the *_by_staff services.
    if actor is None or actor.pk != post.author_id:
        raise PermissionDenied("Only the author can change this post.")


def post_update(
    *, post: Post, actor, title: str, content: str = "", published: bool = False
) -> Post:
    _ensure_author(post, actor)
    post.title = (title or "").strip()
    post.content = (content or "").strip()
    post.published = published
    _validated_save(
        post,
        savepoint=True,
        update_fields=["title", "content", "published", "updated_at"],
    )
    return post


def post_delete(*, post: Post, actor) -> None:
    _ensure_author(post, actor)
    post.delete()


POST_STAFF_FIELDS = frozenset({"author", "app", "title", "content", "published"})


@transaction.atomic
def post_create_by_staff(*, post: Post, actor, request=None) -> Post:
    """Save a post staff added in the admin (on behalf of its author)."""
    post.title = (post.title or "").strip()
    post.content = (post.content or "").strip()
    _created_by_staff(post, actor=actor, request=request)
    return post


@transaction.atomic
def post_update_by_staff(*, post: Post, actor, changes: dict, request=None) -> Post:
    """Staff's edit from the admin, with one audit row of old and new values."""
    _ensure_staff(actor)
    _staff_fields_check(changes, POST_STAFF_FIELDS)
    stored = Post.objects.select_for_update().filter(pk=post.pk).first()
    if stored is None:
        raise ValidationError("This post no longer exists.")
    before = model_snapshot(stored)
    for field, value in changes.items():
        if field in ("title", "content"):
            value = (value or "").strip()
        setattr(stored, field, value)
    _updated_by_staff(post, stored=stored, actor=actor, before=before, request=request)
    return post


@transaction.atomic
def post_delete_by_staff(*, post: Post, actor, request=None) -> None:
    model_delete_by_staff(instance=post, actor=actor, request=request)
