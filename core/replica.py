"""Read-replica state: which requests must read from the primary, and is it up.

Two pieces of state decide where a read goes (see :mod:`core.routers`):

- **per request** (a ``ContextVar``, set up by ``core.db_middleware``): once a
  request wrote (through the ORM or raw SQL) or read inside a transaction, its
  later reads go to the primary, so it sees its own writes; a short-lived cookie
  carries that on to the client's next requests (the redirect after a POST)
  while the replica catches up;
- **per process**: whether the replica answered recently. A replica that fails
  to connect is skipped for ``REPLICA_RETRY_SECONDS`` and reads go to the
  primary meanwhile, so an outage costs one failed connection attempt per
  process per interval, never one per read.

Outside requests (management commands, shell) the same rules apply to the
whole thread: after its first write a command reads from the primary.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

logger = logging.getLogger(__name__)

REPLICA_ALIAS = "replica"
# Set on responses to requests that wrote; its presence pins the next requests.
PIN_COOKIE = "db_primary"
DEFAULT_RETRY_SECONDS = 5.0
DEFAULT_STICKY_SECONDS = 5


@dataclass
class RequestDbState:
    # Reads go to the primary for the rest of the request.
    pinned: bool = False
    # This request wrote (or used a transaction): refresh the pin cookie.
    wrote: bool = False


_state: ContextVar[RequestDbState | None] = ContextVar("ops_db_state", default=None)


def _current() -> RequestDbState:
    state = _state.get()
    if state is None:
        # No middleware around (command, shell, worker thread): state per thread.
        state = RequestDbState()
        _state.set(state)
    return state


def request_started(*, pinned: bool = False) -> Token:
    """Give the request a fresh state; the token goes to :func:`request_finished`."""
    return _state.set(RequestDbState(pinned=pinned))


def request_finished(token: Token) -> None:
    _state.reset(token)


def mark_write() -> None:
    """Pin the current request to the primary because it wrote (or may have)."""
    state = _current()
    state.pinned = True
    state.wrote = True


def is_pinned() -> bool:
    return _current().pinned


def wrote() -> bool:
    return _current().wrote


def note_primary_query(execute, sql, params, many, context):
    """Execute wrapper for the primary's connection during a request.

    Pins the request on any statement that may write (anything but a plain
    SELECT, or any statement inside a transaction), so raw-SQL writes through
    ``connection.cursor()``, which never ask the router, pin as ORM writes do.
    """
    # Composed SQL objects (psycopg.sql) count as writes: no cheap way to tell.
    select = isinstance(sql, str) and sql.lstrip()[:6].upper() == "SELECT"
    if context["connection"].in_atomic_block or not select:
        mark_write()
    return execute(sql, params, many, context)


@contextmanager
def use_primary():
    """Read from the primary inside the block.

    Writes through the ORM, reads in ``transaction.atomic`` blocks and (during a
    request) any non-SELECT statement on the primary pin by themselves; this is
    for the rest, e.g. a raw-SQL write in a management command.
    """
    state = _current()
    previous = state.pinned
    state.pinned = True
    try:
        yield
    finally:
        state.pinned = previous


def replica_configured() -> bool:
    return REPLICA_ALIAS in settings.DATABASES


def sticky_seconds() -> int:
    return int(getattr(settings, "REPLICA_STICKY_SECONDS", DEFAULT_STICKY_SECONDS))


def _retry_seconds() -> float:
    return float(getattr(settings, "REPLICA_RETRY_SECONDS", DEFAULT_RETRY_SECONDS))


class _ReplicaHealth:
    """Per-process memory of replica failures, shared by all threads."""

    def __init__(self) -> None:
        self.down_until = 0.0
        # Only one thread probes a replica that was down; the others use the
        # primary meanwhile instead of queueing behind a connect timeout.
        self.probing = threading.Lock()


health = _ReplicaHealth()


def replica_usable() -> bool:
    """Whether reads may go to the replica now; connects to it if needed.

    The check is what Django does before a connection's first query of a
    request anyway (``CONN_HEALTH_CHECKS``), done early enough to choose another
    database: an open connection is tested once per request, a closed one is
    opened here. A failure marks the replica down for REPLICA_RETRY_SECONDS.
    """
    if time.monotonic() < health.down_until:
        return False
    connection = connections[REPLICA_ALIAS]
    if connection.connection is not None and connection.health_check_done:
        return True
    recovering = health.down_until > 0
    if recovering and not health.probing.acquire(blocking=False):
        return False
    try:
        connection.close_if_health_check_failed()
        connection.ensure_connection()
    except DatabaseError as exc:
        health.down_until = time.monotonic() + _retry_seconds()
        logger.warning(
            "Read replica unavailable (%s: %s); reading from the primary for %ss",
            exc.__class__.__name__,
            str(exc).strip().splitlines()[0] if str(exc).strip() else "",
            _retry_seconds(),
        )
        connection.close()
        return False
    finally:
        if recovering:
            health.probing.release()
    if recovering:
        logger.info("Read replica reachable again; reads go back to it")
        health.down_until = 0.0
    # A freshly opened connection needs no second check in this request.
    connection.health_check_done = True
    return True


def primary_in_transaction() -> bool:
    return connections[DEFAULT_DB_ALIAS].in_atomic_block
