"""`manage.py seed`: the staff user, every app's demo rows, and the volume of
``--users/--apps/--searches``.

Orchestration only. The rows are the apps' own: each app's ``seed.py``
registers a seeder with ``core.seeding.seeder_register`` and this module runs
the registered seeders in their order (``core.seeding.seeders``), so it names
no app. Demo steps are idempotent; volume is added on every run.
"""

from __future__ import annotations

import random

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from core.seeding import (
    DEFAULT_BATCH_SIZE,
    SeedContext,
    VolumeError,
    VolumeResult,
    columns_check,
    raw_connection,
    seeders,
    volume_count_parse,
)


def database_is_empty() -> bool:
    return not get_user_model().objects.exists()


def admin_user_ensure():
    """The ``ADMIN_EMAIL`` user, created or promoted to ADMIN when needed."""
    User = get_user_model()
    email = settings.ADMIN_EMAIL
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(email, name="Admin", role=User.Role.ADMIN)
    elif user.role != User.Role.ADMIN:
        user.role = User.Role.ADMIN
        user.save(update_fields=["role", "updated_at"])
    return user


@transaction.atomic
def seed_demo(*, stdout=None) -> dict[str, int]:
    """The staff user and every registered demo, in one transaction: a failing
    app leaves no half-seeded demo behind. Returns ``{label: created}``."""
    admin = admin_user_ensure()
    summary = {"admin": 1}
    for seeder in seeders():
        if seeder.demo is not None:
            summary.update(seeder.demo(admin=admin, stdout=stdout))
    return summary


def seed_volume(
    *,
    users: int = 0,
    apps: int = 0,
    searches: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
    seed: int | None = None,
) -> VolumeResult:
    """Add ``users`` users, ``apps`` apps (with requirements and monetization)
    and ``searches`` search-history rows (plus a tenth as many API usage rows),
    each registered volume seeder adding its share in order."""
    requested = {
        "users": volume_count_parse(users, name="users"),
        "apps": volume_count_parse(apps, name="apps"),
        "searches": volume_count_parse(searches, name="searches"),
    }
    context = SeedContext(
        rng=random.Random(seed),  # noqa: S311 - fake data, not secrets
        now=timezone.now(),
        batch_size=volume_count_parse(batch_size, name="batch-size") or 1,
        progress=progress,
        requested=requested,
    )
    volume_seeders = [s for s in seeders() if s.volume is not None]
    # Every column list before any row: a stale one fails with nothing written.
    for seeder in volume_seeders:
        for model, columns in seeder.copies:
            columns_check(model, columns)
    owners_wanted = bool(requested["apps"] or requested["searches"])

    with raw_connection().cursor() as cursor:
        # Durability of each batch is not worth a WAL flush wait: a crash loses
        # at most the last batches of generated data. Session-level only.
        cursor.execute("SET synchronous_commit = off")
    try:
        for seeder in volume_seeders:
            if seeder.needs_owners and owners_wanted and not context.owners:
                raise VolumeError(
                    "There are no users to own apps or searches: add --users."
                )
            seeder.volume(context)
    finally:
        with raw_connection().cursor() as cursor:
            cursor.execute("RESET synchronous_commit")
    return context.result
