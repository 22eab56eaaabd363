"""Demo data for `manage.py seed`.

Each app that has demo rows exposes ``<app>.seed.seed_demo(*, admin, stdout)``
returning ``{label: count}``; this module creates the staff user and calls them
in dependency order. Every step must be idempotent.
"""

from __future__ import annotations

import importlib

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

SEED_MODULES = [
    "accounts.seed",
    "apps_catalog.seed",
    "searches.seed",
    "billing.seed",
    "ops.seed_data",
]


def database_is_empty() -> bool:
    return not get_user_model().objects.exists()


def admin_user_ensure():
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
    admin = admin_user_ensure()
    summary = {"admin": 1}
    for module_name in SEED_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        summary.update(module.seed_demo(admin=admin, stdout=stdout))
    return summary
