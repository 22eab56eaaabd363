"""Demo catalog for ``manage.py seed``: apps with a fork chain four levels deep,
requirements, every monetization type and posts.

Idempotent: demo users are found by email, apps by (owner, name); a second run
creates nothing. Everything is written through the services, so fork counts and
versions are what the pages would have produced.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth import get_user_model

from apps_catalog import services
from apps_catalog.models import App, MonetizationModel, Requirement

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
