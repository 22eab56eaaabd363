"""Platform reads: feature flag decisions."""

from __future__ import annotations

import hashlib

from django.db.models import Exists, OuterRef

from core.models import FeatureFlag

BUCKETS = 100


def flag_bucket(key: str, user_id: str) -> int:
    """The user's bucket (0-99) for one flag.

    A stable hash of the flag key and user id, so the answer is the same on every
    request, process and machine (Python's ``hash()`` is salted per process), and a
    user's buckets for two different flags are independent.
    """
    digest = hashlib.sha256(f"{key}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def flag_enabled(key: str, user=None) -> bool:
    """Whether ``user`` (a User, or None/anonymous) gets the feature ``key``.

    Unknown or disabled flags are off. An enabled flag is on for users in its
    allow-list, for everyone at 100 %, and otherwise for signed-in users whose
    bucket is below ``rollout_percent``. One query.
    """
    user_id = (
        getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else None
    )
    flags = FeatureFlag.objects.filter(key=key, enabled=True)
    if user_id is not None:
        flags = flags.annotate(
            allowed=Exists(
                FeatureFlag.allowed_users.through.objects.filter(
                    featureflag_id=OuterRef("pk"), user_id=user_id
                )
            )
        )
        row = flags.values("rollout_percent", "allowed").first()
    else:
        row = flags.values("rollout_percent").first()
    if row is None:
        return False
    if row.get("allowed") or row["rollout_percent"] >= BUCKETS:
        return True
    if user_id is None:
        return False
    return flag_bucket(key, str(user_id)) < row["rollout_percent"]
