"""The machinery behind `manage.py seed`: COPY batching, progress, time order and
the registry through which every app contributes its own demo and volume rows.

This module knows no app. Each app's ``seed.py`` owns its rows (columns, row
generators, coherent relations) and registers a :class:`Seeder` at import;
:func:`seeders` imports every installed app's ``seed`` module the first time it
is asked (``autodiscover_modules``, the admin's idiom), so a new app takes part
by adding that one file, and ``core`` stays below every app it seeds.

Volume rows go in through PostgreSQL ``COPY … FROM STDIN`` on the raw psycopg
connection behind Django's, in batches of ``batch_size`` rows, each batch its
own transaction. Indexes, constraints and foreign keys stay in place: every row
is checked exactly as an ORM insert would be, only without a round trip per row.
"""

from __future__ import annotations

import datetime as dt
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db import connection, transaction
from django.utils.module_loading import autodiscover_modules
from tqdm import tqdm

if TYPE_CHECKING:
    from django.db.models import Model

DEFAULT_BATCH_SIZE = 100_000
# Per option and run: a typo'd extra digit or three is refused at once instead
# of running for days (10x the large benchmark's 10M history rows).
MAX_VOLUME = 100_000_000
# Volume rows are dated over this many days back from the run's ``now``.
HISTORY_DAYS = 180

# A shared vocabulary, so names, descriptions and keywords of different apps'
# rows read alike without one app importing another's seed module.
ADJECTIVES = [
    "rapid",
    "smart",
    "quiet",
    "bold",
    "bright",
    "clever",
    "simple",
    "modern",
    "agile",
    "lean",
    "open",
    "cloud",
    "social",
    "green",
    "happy",
    "secure",
    "native",
    "tiny",
    "mighty",
    "zen",
]
NOUNS = [
    "invoice",
    "planner",
    "tracker",
    "studio",
    "notes",
    "mail",
    "chat",
    "forms",
    "metrics",
    "pages",
    "shop",
    "crm",
    "wiki",
    "board",
    "calendar",
    "budget",
    "recipes",
    "fitness",
    "survey",
    "deploy",
]
KEYWORD_WORDS = [
    "saas",
    "pricing",
    "launch",
    "marketing",
    "seo",
    "keyword",
    "tool",
    "free",
    "best",
    "cheap",
    "online",
    "app",
    "builder",
    "no-code",
    "template",
    "startup",
    "growth",
    "email",
    "crm",
    "analytics",
    "review",
    "guide",
]


class VolumeError(ValueError):
    """Bad volume arguments (negative, not integers) or nothing to attach rows to."""


@dataclass
class VolumeResult:
    """What a volume run added: rows per label and seconds per step, in the order
    the seeders ran (the command prints them as they are)."""

    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def volume_count_parse(value, *, name: str) -> int:
    """An ``N`` for --users/--apps/--searches: a non-negative integer."""
    if isinstance(value, bool):
        raise VolumeError(f"--{name} must be a whole number, not {value!r}.")
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip().replace("_", "")
        if not text.lstrip("-").isdigit():
            raise VolumeError(f"--{name} must be a whole number, not {value!r}.")
        number = int(text)
    if number < 0:
        raise VolumeError(f"--{name} cannot be negative ({number}).")
    if number > MAX_VOLUME:
        raise VolumeError(
            f"--{name} {number:,} is more than this command adds in one run "
            f"({MAX_VOLUME:,}); run it again for more."
        )
    return number


# ---------------------------------------------------------------------------
# COPY plumbing


def raw_connection():
    """The psycopg connection behind Django's default connection."""
    connection.ensure_connection()
    return connection.connection


def columns_check(model: type[Model], columns: Sequence[str]) -> tuple[str, ...]:
    """Refuse to COPY into a table whose model has columns the seeder does not
    fill, or no longer has columns it fills: a new NOT NULL column would
    otherwise fail deep inside a batch, after earlier tables were written."""
    expected = {f.column for f in model._meta.concrete_fields}
    if set(columns) != expected:
        missing = sorted(expected - set(columns))
        extra = sorted(set(columns) - expected)
        raise RuntimeError(
            f"volume seed columns for {model._meta.db_table} are out of date: "
            f"missing {missing}, unknown {extra}"
        )
    return tuple(columns)


def copy_rows(cursor, table: str, columns: Iterable[str], rows: Iterable[tuple]) -> int:
    """``COPY table (columns) FROM STDIN`` with one ``write_row`` per row."""
    count = 0
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with cursor.copy(sql) as copy:
        write_row = copy.write_row
        for row in rows:
            write_row(row)
            count += 1
    return count


def batch_sizes(total: int, size: int) -> Iterator[int]:
    """``total`` split into batches of at most ``size``."""
    while total > 0:
        n = min(size, total)
        yield n
        total -= n


def progress_bar(total: int, label: str, enabled: bool):
    """A tqdm bar on stderr (stdout carries the command's summary lines)."""
    return tqdm(
        total=total,
        desc=label,
        unit=" rows",
        unit_scale=True,
        disable=not enabled or total == 0,
        file=sys.stderr,
        mininterval=0.5,
    )


def copy_batches(
    context: SeedContext,
    *,
    label: str,
    total: int,
    make_batch: Callable[[int], Iterable[tuple]],
    table: str,
    columns: Sequence[str],
) -> int:
    """COPY ``total`` rows into one table, ``make_batch(n)`` generating each batch
    just before it is copied (memory stays at one batch), one transaction per
    batch, with a progress bar labelled ``label``."""
    copied = 0
    with progress_bar(total, label, context.progress) as bar:
        for n in batch_sizes(total, context.batch_size):
            with transaction.atomic(), raw_connection().cursor() as cursor:
                copied += copy_rows(cursor, table, columns, make_batch(n))
            bar.update(n)
    return copied


class Timeline:
    """Instants over the last ``days`` for ``total`` rows, handed out oldest
    first in consecutive slices: the k-th call gets the k-th slice of the span.

    So a run's rows go in globally in time order, as real history does: the
    time-keyed indexes ((searched_at, id), (provider, searched_at), the
    cache-hit one, APIUsage's (timestamp)) grow at their right edge and each
    batch touches a batch-sized region of them, instead of every batch sweeping
    their whole width (which, on a 10M-row table, no longer fits in shared
    buffers and was most of the seed's time).
    """

    def __init__(
        self,
        total: int,
        *,
        rng: random.Random,
        now: dt.datetime,
        days: int = HISTORY_DAYS,
    ) -> None:
        self.total = max(total, 1)
        self.rng = rng
        self.now = now
        self.days = days
        self.handed = 0

    def moments(self, n: int) -> list[dt.datetime]:
        span = self.days * 86400.0
        newest = span * (1 - self.handed / self.total)  # seconds ago
        oldest = span * (1 - min(self.handed + n, self.total) / self.total)
        self.handed += n
        width = newest - oldest
        random_ = self.rng.random
        offsets = sorted((oldest + random_() * width for _ in range(n)), reverse=True)
        now, timedelta = self.now, dt.timedelta
        return [now - timedelta(seconds=offset) for offset in offsets]


# ---------------------------------------------------------------------------
# The context handed to volume seeders


@dataclass
class SeedContext:
    """One volume run, shared by the seeders in registry order.

    ``requested`` holds the command's counts (``users``, ``apps``,
    ``searches``); each seeder reads the ones it serves. ``owners`` is filled by
    the seeder of the user table (the new users, or existing ones when it added
    none) and read by the seeders whose rows belong to a user. One ``rng`` for
    the whole run, so a ``seed`` reproduces every table.
    """

    rng: random.Random
    now: dt.datetime
    batch_size: int = DEFAULT_BATCH_SIZE
    progress: bool = True
    requested: Mapping[str, int] = field(default_factory=dict)
    owners: list[str] = field(default_factory=list)
    result: VolumeResult = field(default_factory=VolumeResult)

    @contextmanager
    def timed(self, label: str) -> Iterator[None]:
        """Record the block's wall time as ``result.seconds[label]``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.result.seconds[label] = time.perf_counter() - started


# ---------------------------------------------------------------------------
# The registry


# ``demo(*, admin, stdout) -> {label: created}``
DemoSeeder = Callable[..., dict[str, int]]
VolumeSeeder = Callable[[SeedContext], None]


@dataclass(frozen=True)
class Seeder:
    """One app's contribution to `manage.py seed`.

    ``demo(admin=, stdout=)`` creates the app's demo rows idempotently and
    returns ``{label: created}``; ``volume(context)`` adds the requested volume
    and records counts and seconds in ``context.result``. ``copies`` lists the
    (model, columns) pairs the volume COPYs into, so every column list is
    checked before any table is written. ``needs_owners`` marks a volume whose
    rows belong to users (``context.owners``).

    ``order`` follows the layers, lowest first, because a higher layer's rows
    point at a lower one's: 10 for accounts, 20 for apps_catalog and searches
    (siblings: same order, then by name), 30 for billing, 90 for core's own
    demo.
    """

    name: str
    order: int
    demo: DemoSeeder | None = None
    volume: VolumeSeeder | None = None
    copies: tuple[tuple[type[Model], tuple[str, ...]], ...] = ()
    needs_owners: bool = False


_registry: dict[str, Seeder] = {}
_discovered = False


def seeder_register(
    *,
    name: str,
    order: int,
    demo: DemoSeeder | None = None,
    volume: VolumeSeeder | None = None,
    copies: Iterable[tuple[type[Model], Sequence[str]]] = (),
    needs_owners: bool = False,
) -> Seeder:
    """Register an app's seeder; call it at the bottom of the app's ``seed.py``.

    Registering a name again replaces the seeder, so re-importing a module (a
    shell's reload) does not run its rows twice.
    """
    seeder = Seeder(
        name=name,
        order=order,
        demo=demo,
        volume=volume,
        copies=tuple((model, tuple(columns)) for model, columns in copies),
        needs_owners=needs_owners,
    )
    _registry[name] = seeder
    return seeder


def seeders() -> list[Seeder]:
    """Every registered seeder, by ``order`` then name.

    The first call imports each installed app's ``seed`` module, which registers
    its seeder; discovery waits for that call because the modules import
    models, which the app registry must be ready for.
    """
    global _discovered
    if not _discovered:
        autodiscover_modules("seed")
        _discovered = True
    return sorted(_registry.values(), key=lambda s: (s.order, s.name))
