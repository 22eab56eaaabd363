"""Extension points through which the apps above accounts take part in its rules.

accounts sits below apps_catalog, searches and billing (docs/architecture.md),
so it cannot import them. An app that has to refuse or prepare a user's deletion
registers a function here from its ``AppConfig.ready()``; accounts' services run
every registered function at the right moment, inside their own transaction.

Business rules go through these explicit registries, not Django signals: a
reader of ``user_delete`` can find every participant with ``grep`` for the
registry's name, and a refusal (``ValidationError``) stops the deletion.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accounts.models import User

UserHook = Callable[..., object]

_deletion_checks: list[UserHook] = []
_before_deletion: list[UserHook] = []


def _register(registry: list[UserHook], function: UserHook) -> UserHook:
    # ready() can run twice (tests, reloads): register each function once.
    if function not in registry:
        registry.append(function)
    return function


def user_deletion_check_register(function: UserHook) -> UserHook:
    """Register ``function(*, user)``: it raises ``ValidationError`` with a
    message for the user when their account may not be deleted now."""
    return _register(_deletion_checks, function)


def before_user_deletion_register(function: UserHook) -> UserHook:
    """Register ``function(*, user)``, run in the deleting transaction just
    before the row goes: whatever must be released or rewritten first."""
    return _register(_before_deletion, function)


def user_deletion_checks_run(*, user: User) -> None:
    for check in _deletion_checks:
        check(user=user)


def before_user_deletion_run(*, user: User) -> None:
    for prepare in _before_deletion:
        prepare(user=user)
