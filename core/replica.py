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
  process per interval, never one per read. Likewise a replica lagging more
  than ``REPLICA_MAX_LAG_SECONDS`` behind is skipped; its lag is measured at
  most once per ``REPLICA_LAG_CHECK_SECONDS`` per process (one small query on
  the replica), never once per read.

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
DEFAULT_MAX_LAG_SECONDS = 30.0
DEFAULT_LAG_CHECK_SECONDS = 3.0


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


def max_lag_seconds() -> float:
    """Lag beyond which reads leave the replica (0 or less: never for lag)."""
    return float(getattr(settings, "REPLICA_MAX_LAG_SECONDS", DEFAULT_MAX_LAG_SECONDS))


def _lag_check_seconds() -> float:
    return float(
        getattr(settings, "REPLICA_LAG_CHECK_SECONDS", DEFAULT_LAG_CHECK_SECONDS)
    )


# One round trip on the replica. Seconds: zero when everything received is
# replayed and the WAL receiver is connected (an idle primary sends nothing, and
# "time since the last replayed transaction" would grow with nothing behind);
# otherwise the age of the last replayed transaction, which is how stale the
# replica's data can be. A receiver that is not connected may be missing WAL it
# never heard of, so its replica counts as behind by that age too. Bytes: WAL
# not replayed yet, against the primary's position when given (includes WAL
# still in flight), else against what the replica received.
_LAG_SQL = """
SELECT pg_is_in_recovery(),
       pg_is_in_recovery() AND pg_is_wal_replay_paused(),
       pg_last_wal_receive_lsn()::text,
       pg_last_wal_replay_lsn()::text,
       extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float,
       EXISTS (SELECT 1 FROM pg_stat_wal_receiver),
       greatest(pg_wal_lsn_diff(pg_last_wal_receive_lsn(),
                                pg_last_wal_replay_lsn()), 0)::bigint,
       greatest(pg_wal_lsn_diff(%(primary)s::pg_lsn,
                                pg_last_wal_replay_lsn()), 0)::bigint
"""


@dataclass
class ReplicaLag:
    """The replica's distance from the primary, as the replica sees it."""

    in_recovery: bool
    replay_paused: bool
    receiving: bool
    receive_lsn: str | None
    replay_lsn: str | None
    # Age of the last replayed transaction (grows on an idle primary).
    last_replay_age: float | None
    # WAL not replayed yet: vs. the primary's current LSN when it was given,
    # else vs. what the replica has received.
    bytes_behind: int | None
    # How stale reads from the replica may be (see _LAG_SQL); None: unknown.
    seconds_behind: float | None

    def exceeds(self, limit: float) -> bool:
        """Whether reads should avoid the replica at ``limit`` seconds."""
        if limit <= 0 or not self.in_recovery:
            # Not a standby (promoted, or a plain server): nothing to replay.
            return False
        if self.seconds_behind is None:
            # Behind by an unknown time (nothing replayed since it started).
            return True
        return self.seconds_behind > limit

    def as_dict(self) -> dict:
        return {
            "in_recovery": self.in_recovery,
            "replay_paused": self.replay_paused,
            "receiving": self.receiving,
            "lag_seconds": (
                None if self.seconds_behind is None else round(self.seconds_behind, 3)
            ),
            "lag_bytes": self.bytes_behind,
            "last_replay_age_seconds": (
                None if self.last_replay_age is None else round(self.last_replay_age, 3)
            ),
        }


def measure_lag(using: str = REPLICA_ALIAS, *, primary_lsn: str | None = None):
    """Measure the replica's lag (:class:`ReplicaLag`); raises DatabaseError.

    ``primary_lsn`` (the primary's ``pg_current_wal_lsn()``) makes the bytes
    count WAL the replica has not even received; without it the check costs
    no query on the primary.
    """
    with connections[using].cursor() as cursor:
        cursor.execute(_LAG_SQL, {"primary": primary_lsn})
        (
            in_recovery,
            paused,
            receive_lsn,
            replay_lsn,
            age,
            receiving,
            unreplayed,
            behind_primary,
        ) = cursor.fetchone()
    behind = unreplayed if behind_primary is None else behind_primary
    if not in_recovery or (not unreplayed and receiving):
        seconds = 0.0
    else:
        seconds = None if age is None else max(age, 0.0)
    return ReplicaLag(
        in_recovery=in_recovery,
        replay_paused=bool(paused),
        receiving=receiving,
        receive_lsn=receive_lsn,
        replay_lsn=replay_lsn,
        last_replay_age=age,
        bytes_behind=behind,
        seconds_behind=seconds,
    )


class _ReplicaHealth:
    """Per-process memory of replica failures and lag, shared by all threads."""

    def __init__(self) -> None:
        self.down_until = 0.0
        # Only one thread probes a replica that was down; the others use the
        # primary meanwhile instead of queueing behind a connect timeout.
        self.probing = threading.Lock()
        # Last lag measurement (monotonic time) and whether it was too much.
        self.lag_checked_at = float("-inf")
        self.lagging = False
        self.last_lag: ReplicaLag | None = None
        # Only one thread re-measures; the others use the last answer.
        self.measuring = threading.Lock()


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
        return not _lagging(connection)
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
    return not _lagging(connection)


def _lagging(connection) -> bool:
    """Whether the replica lags beyond REPLICA_MAX_LAG_SECONDS, measured at most
    once per REPLICA_LAG_CHECK_SECONDS per process."""
    limit = max_lag_seconds()
    if limit <= 0:
        return False
    if time.monotonic() - health.lag_checked_at < _lag_check_seconds():
        return health.lagging
    if not health.measuring.acquire(blocking=False):
        return health.lagging
    try:
        try:
            lag = measure_lag(connection.alias)
        except DatabaseError as exc:
            # Same as a failed connection: leave the replica alone for a while.
            health.down_until = time.monotonic() + _retry_seconds()
            logger.warning(
                "Read replica lag check failed (%s); reading from the primary for %ss",
                exc.__class__.__name__,
                _retry_seconds(),
            )
            connection.close()
            return True
        lagging = lag.exceeds(limit)
        if lagging and not health.lagging:
            logger.warning(
                "Read replica lags %s s / %s bytes (limit %s s); reading from the "
                "primary until it catches up",
                lag.seconds_behind,
                lag.bytes_behind,
                limit,
            )
        elif health.lagging and not lagging:
            logger.info("Read replica caught up; reads go back to it")
        health.lagging = lagging
        health.last_lag = lag
        health.lag_checked_at = time.monotonic()
        return lagging
    finally:
        health.measuring.release()


def reads_use_replica() -> bool | None:
    """Where this process sends reads now, from memory only (no query):
    None without a replica, False while it is down or lagging."""
    if not replica_configured():
        return None
    return time.monotonic() >= health.down_until and not health.lagging


def primary_in_transaction() -> bool:
    return connections[DEFAULT_DB_ALIAS].in_atomic_block
