"""Demo catalog for ``manage.py seed``: apps with a fork chain four levels deep,
requirements, every monetization type and posts.

Idempotent: demo users are found by email, apps by (owner, name); a second run
creates nothing. Everything is written through the services, so fork counts and
versions are what the pages would have produced.

The volume of ``--apps N`` goes in through COPY instead (see ``core.seeding``):
apps owned by the run's owners, a fifth of them forks of an earlier app of the
same batch, so fork chains form and each parent's ``fork_count`` (direct forks
that are not DELETED) is computed before the COPY and is right when the batch
commits; requirements for about 30 % of the apps and a monetization model (every
type, prices and intervals as the constraints demand) for about half.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction

from apps_catalog import services
from apps_catalog.models import App, MonetizationModel, Requirement
from core.ids import new_id
from core.seeding import (
    ADJECTIVES,
    HISTORY_DAYS,
    KEYWORD_WORDS,
    NOUNS,
    SeedContext,
    batch_sizes,
    copy_rows,
    progress_bar,
    raw_connection,
    seeder_register,
)

DEMO_USERS = [
    ("ada.builder@example.com", "Ada Builder"),
    ("grace.forker@example.com", "Grace Forker"),
    ("linus.tinker@example.com", "Linus Tinker"),
]

M = MonetizationModel.Type
P = Requirement.Priority
S = Requirement.Status


def _user(email: str, name: str, counts: dict[str, int]):
    User = get_user_model()
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(email, name=name)
        counts["catalog demo users"] += 1
    return user


def _app(owner, spec: dict, counts: dict[str, int], *, fork_of: App | None = None):
    """The demo app ``spec`` of ``owner``, created (or forked) when missing."""
    existing = App.objects.filter(owner=owner, name=spec["name"]).first()
    if existing is not None:
        return existing
    if fork_of is not None:
        app = services.app_fork(app=fork_of, actor=owner)
        app = services.app_update(
            app=app,
            actor=owner,
            name=spec["name"],
            description=spec.get("description", app.description),
            domain=spec.get("domain"),
            status=spec.get("status", App.Status.ACTIVE),
        )
        counts["apps"] += 1
        counts["requirements"] += app.requirements.count()
        counts["monetization models"] += app.monetization_models.count()
    else:
        app = services.app_create(
            owner=owner,
            name=spec["name"],
            description=spec.get("description", ""),
            domain=spec.get("domain"),
            status=App.Status.ACTIVE
            if spec.get("status", App.Status.ACTIVE) != App.Status.DRAFT
            else App.Status.DRAFT,
        )
        counts["apps"] += 1
    for description, priority, status in spec.get("requirements", []):
        services.requirement_create(
            app=app,
            actor=owner,
            description=description,
            priority=priority,
            status=status,
        )
        counts["requirements"] += 1
    for type_, price, interval, features in spec.get("monetization", []):
        services.monetization_create(
            app=app,
            actor=owner,
            type=type_,
            price=price,
            subscription_interval=interval,
            features=features,
        )
        counts["monetization models"] += 1
    for title, content in spec.get("posts", []):
        services.post_create(
            author=owner, app=app, title=title, content=content, published=True
        )
        counts["posts"] += 1
    if spec.get("status") == App.Status.ARCHIVED:
        services.app_archive(app=app, actor=owner)
    return app


def seed_demo(*, admin, stdout=None) -> dict[str, int]:
    counts = {
        "catalog demo users": 0,
        "apps": 0,
        "requirements": 0,
        "monetization models": 0,
        "posts": 0,
    }
    ada, grace, linus = (_user(email, name, counts) for email, name in DEMO_USERS)

    habits = _app(
        ada,
        {
            "name": "Habit Tracker",
            "description": "Track daily habits, streaks and reminders.",
            "domain": "habits.example.com",
            "requirements": [
                ("Daily check-in screen", P.HIGH, S.COMPLETED),
                ("Streak counter with a calendar view", P.MEDIUM, S.IN_PROGRESS),
                ("Push reminders at a chosen time", P.CRITICAL, S.PENDING),
                ("Export history as CSV", P.LOW, S.REJECTED),
            ],
            "monetization": [
                (M.FREEMIUM, None, "", ["3 habits free", "Unlimited with Pro"]),
                (
                    M.SUBSCRIPTION,
                    Decimal("4.99"),
                    MonetizationModel.Interval.MONTHLY,
                    ["Unlimited habits", "Reminders", "Cloud sync"],
                ),
            ],
            "posts": [
                ("Habit Tracker is live", "The first public version is out."),
                ("Streaks are here", "See how many days in a row you kept it up."),
            ],
        },
        counts,
    )
    teams = _app(
        grace,
        {
            "name": "Habit Tracker for Teams",
            "description": "Shared habits and team streaks for small companies.",
            "requirements": [("Team invitations by email", P.HIGH, S.PENDING)],
            "monetization": [
                (
                    M.SUBSCRIPTION,
                    Decimal("49.00"),
                    MonetizationModel.Interval.YEARLY,
                    ["Up to 20 members", "Team dashboard"],
                ),
            ],
            "posts": [("Forked for teams", "Built on Ada's Habit Tracker.")],
        },
        counts,
        fork_of=habits,
    )
    lite = _app(
        linus,
        {
            "name": "Team Habits Lite",
            "description": "A one-time purchase version of team habits.",
            "monetization": [
                (M.ONE_TIME, Decimal("19.99"), "", ["Lifetime licence", "5 members"]),
            ],
        },
        counts,
        fork_of=teams,
    )
    _app(
        admin,
        {
            "name": "Team Habits Lite (staff sandbox)",
            "status": App.Status.DRAFT,
        },
        counts,
        fork_of=lite,
    )
    _app(
        linus,
        {"name": "Habit Tracker Classic", "status": App.Status.ACTIVE},
        counts,
        fork_of=habits,
    )
    _app(
        ada,
        {
            "name": "Invoice Generator",
            "description": "PDF invoices from a simple form; pay per invoice.",
            "domain": "invoices.example.com",
            "requirements": [
                ("PDF rendering with the company logo", P.HIGH, S.COMPLETED),
                ("VAT rates per country", P.MEDIUM, S.PENDING),
            ],
            "monetization": [
                (M.USAGE_BASED, Decimal("0.10"), "", ["Pay per invoice"]),
                (
                    M.SUBSCRIPTION,
                    Decimal("12.00"),
                    MonetizationModel.Interval.QUARTERLY,
                    ["Unlimited invoices"],
                ),
            ],
        },
        counts,
    )
    _app(
        grace,
        {
            "name": "Recipe Box",
            "description": "Private recipe collection.",
            "status": App.Status.DRAFT,
            "requirements": [("Import recipes from a URL", P.MEDIUM, S.PENDING)],
            "monetization": [(M.FREE, None, "", ["Everything"])],
        },
        counts,
    )
    _app(
        linus,
        {
            "name": "Old Portfolio",
            "description": "A portfolio site, kept for reference.",
            "status": App.Status.ARCHIVED,
            "monetization": [(M.FREE, None, "", [])],
        },
        counts,
    )
    if stdout is not None and counts["apps"]:
        stdout.write(f"App catalog: {counts['apps']} demo apps created.")
    return counts


# ---------------------------------------------------------------------------
# Volume (each generator returns tuples in its table's column order)

APP_STATUSES = ("ACTIVE",) * 14 + ("DRAFT",) * 3 + ("ARCHIVED",) * 2 + ("DELETED",)
PRIORITIES = [c.value for c in Requirement.Priority]
REQ_STATUSES = [c.value for c in Requirement.Status]
MONETIZATION_TYPES = [c.value for c in MonetizationModel.Type]
INTERVALS = [c.value for c in MonetizationModel.Interval]

APP_COLUMNS = (
    "id",
    "name",
    "description",
    "owner_id",
    "forked_from_id",
    "status",
    "domain",
    "fork_count",
    "created_at",
    "updated_at",
    "deleted_at",
)
REQUIREMENT_COLUMNS = (
    "id",
    "app_id",
    "description",
    "priority",
    "status",
    "version",
    "created_at",
    "updated_at",
)
MONETIZATION_COLUMNS = (
    "id",
    "app_id",
    "type",
    "price",
    "subscription_interval",
    "features",
    "created_at",
    "updated_at",
)


def app_rows(
    n: int, *, owners: list[str], rng: random.Random, now: dt.datetime
) -> list[tuple]:
    """Apps of one batch; forks point at earlier apps of the same batch, so the
    batch's parents' fork counts are complete when it is copied."""
    ids = [new_id() for _ in range(n)]
    statuses = [rng.choice(APP_STATUSES) for _ in range(n)]
    parents: list[int | None] = [None] * n
    fork_counts = [0] * n
    for i in range(1, n):
        if rng.random() < 0.2:
            # Mostly recent parents, so chains (fork of a fork of …) form.
            parent = i - 1 - min(int(rng.expovariate(1 / 20)), i - 1)
            parents[i] = parent
            if statuses[i] != "DELETED":
                fork_counts[parent] += 1
    # Children are created after their parents.
    offsets = sorted(
        (rng.randrange(HISTORY_DAYS * 86400) for _ in range(n)), reverse=True
    )
    rows = []
    for i in range(n):
        adjective = rng.choice(ADJECTIVES)
        noun = rng.choice(NOUNS)
        created = now - dt.timedelta(seconds=offsets[i])
        parent = parents[i]
        rows.append(
            (
                ids[i],
                f"{adjective.title()} {noun} {ids[i][:6]}",
                f"A {adjective} {noun} app for {rng.choice(KEYWORD_WORDS)} "
                f"{rng.choice(KEYWORD_WORDS)} teams.",
                rng.choice(owners),
                ids[parent] if parent is not None else None,
                statuses[i],
                None,
                fork_counts[i],
                created,
                created,
                # Deleted when last changed: old enough to be past the trash.
                created if statuses[i] == "DELETED" else None,
            )
        )
    return rows


def app_children_rows(
    apps: list[tuple], *, rng: random.Random
) -> tuple[list[tuple], list[tuple]]:
    """Requirements (1 to 3 for about 30 % of ``apps``) and one monetization model
    for about half, dated with their app."""
    requirements, monetization = [], []
    for app in apps:
        app_id, created = app[0], app[8]
        if rng.random() < 0.3:
            for k in range(rng.randint(1, 3)):
                requirements.append(
                    (
                        new_id(),
                        app_id,
                        f"Requirement {k + 1}: {rng.choice(KEYWORD_WORDS)} support",
                        rng.choice(PRIORITIES),
                        rng.choice(REQ_STATUSES),
                        1,
                        created,
                        created,
                    )
                )
        if rng.random() < 0.5:
            kind = rng.choice(MONETIZATION_TYPES)
            price = None
            if kind in ("ONE_TIME", "SUBSCRIPTION"):
                price = f"{rng.randint(1, 99)}.{rng.randrange(100):02d}"
            monetization.append(
                (
                    new_id(),
                    app_id,
                    kind,
                    price,
                    rng.choice(INTERVALS) if kind == "SUBSCRIPTION" else "",
                    ["Core features", rng.choice(KEYWORD_WORDS).title()],
                    created,
                    created,
                )
            )
    return requirements, monetization


def seed_volume(context: SeedContext) -> None:
    """Add ``requested["apps"]`` apps with their requirements and monetization
    models; an app and its children share a batch's transaction, so a fork's
    parent and a parent's fork count are never in different commits."""
    total = context.requested.get("apps", 0)
    rng, now, owners = context.rng, context.now, context.owners
    counts = {"apps": 0, "requirements": 0, "monetization models": 0}
    with context.timed("apps"), progress_bar(total, "apps", context.progress) as bar:
        for n in batch_sizes(total, context.batch_size):
            rows = app_rows(n, owners=owners, rng=rng, now=now)
            requirements, monetization = app_children_rows(rows, rng=rng)
            with transaction.atomic(), raw_connection().cursor() as cursor:
                counts["apps"] += copy_rows(
                    cursor, App._meta.db_table, APP_COLUMNS, rows
                )
                counts["requirements"] += copy_rows(
                    cursor,
                    Requirement._meta.db_table,
                    REQUIREMENT_COLUMNS,
                    requirements,
                )
                counts["monetization models"] += copy_rows(
                    cursor,
                    MonetizationModel._meta.db_table,
                    MONETIZATION_COLUMNS,
                    monetization,
                )
            bar.update(n)
    context.result.counts.update(counts)


seeder_register(
    name="apps_catalog",
    order=20,
    demo=seed_demo,
    volume=seed_volume,
    copies=[
        (App, APP_COLUMNS),
        (Requirement, REQUIREMENT_COLUMNS),
        (MonetizationModel, MONETIZATION_COLUMNS),
    ],
    needs_owners=True,
)
