"""Extension points through which the apps above accounts take part in its rules.

accounts sits below apps_catalog, searches and billing (docs/architecture.md),
so it cannot import them. An app that has to refuse or prepare a user's deletion,
or that keeps data of the user's for their archive ("Download my data"),
registers a function here from its ``AppConfig.ready()``; accounts' services run
every registered function at the right moment.

Business rules go through these explicit registries, not Django signals: a
reader of ``user_delete`` can find every participant with ``grep`` for the
registry's name, and a refusal (``ValidationError``) stops the deletion.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accounts.models import User

UserHook = Callable[..., object]

_deletion_checks: list[UserHook] = []
_before_deletion: list[UserHook] = []
_data_export_sections: dict[str, UserHook] = {}


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


def user_data_export_register(name: str, function: UserHook) -> UserHook:
    """Register ``function(*, user)`` as section ``name`` of the user's data
    archive: it returns JSON-able data (``DjangoJSONEncoder`` types) of
    everything about the user that the registering app keeps, and nothing of
    anyone else's (no other user's email, name or private rows).

    A list may be returned as an iterator (``QuerySet.values().iterator()``):
    big tables stream into the archive row by row instead of into memory."""
    registered = _data_export_sections.get(name)
    if registered is not None and (
        registered.__module__,
        registered.__qualname__,
    ) != (function.__module__, function.__qualname__):
        raise ValueError(f"Two data export sections are named {name!r}.")
    _data_export_sections[name] = function
    return function


def user_data_export_run(*, user: User) -> Iterator[tuple[str, object]]:
    """``(name, data)`` of every registered section, in registration order;
    each section's queries run when it is reached."""
    for name, function in _data_export_sections.items():
        yield name, function(user=user)
