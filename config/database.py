"""Database settings built from the environment (see SPEC §1).

- no DATABASE_URL: the embedded server under ``var/postgres``;
- DATABASE_URL: that server; ``?pgbouncer=true`` or DB_POOLER=transaction makes
  the connection safe for PgBouncer's transaction pooling;
- DIRECT_URL: the direct (unpooled) connection that schema commands use;
- DATABASE_READ_URL: an optional read replica, exposed as the ``replica`` alias.
"""

from __future__ import annotations

import copy
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlparse, urlunparse

import environ

POOLER_FLAG = "pgbouncer"


def _strip_pooler_flag(url: str) -> tuple[str, bool]:
    parts = urlparse(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    flagged = any(
        k == POOLER_FLAG and v.lower() in ("1", "true", "yes") for k, v in query
    )
    query = [(k, v) for k, v in query if k != POOLER_FLAG]
    return urlunparse(parts._replace(query=urlencode(query))), flagged


def database_from_url(url: str, *, transaction_pooling: bool = False, **extra) -> dict:
    url, flagged = _strip_pooler_flag(url)
    config = environ.Env.db_url_config(url)
    config["ENGINE"] = "core.db.postgresql"
    # A Unix socket directory is written percent-encoded in the host part
    # (postgres://user@%2Frun%2Fpostgresql/db); libpq needs the plain path.
    config["HOST"] = unquote(config.get("HOST") or "")
    _merge(config, extra)
    if transaction_pooling or flagged:
        apply_transaction_pooling(config)
    return config


def apply_transaction_pooling(config: dict) -> dict:
    """Make a connection safe behind PgBouncer in transaction mode.

    Server-side cursors (``.iterator()``) and prepared statements live in a
    server session that transaction pooling hands to other clients between
    transactions: both are switched off, and parameters are bound client-side
    (Django's default).
    """
    config["DISABLE_SERVER_SIDE_CURSORS"] = True
    options = config.setdefault("OPTIONS", {})
    options.pop("server_side_binding", None)
    options.pop("prepare_threshold", None)
    return config


def prepared_statement_options(env: environ.Env) -> dict:
    """Server-side binding, and psycopg's prepared statements once a connection
    has run a statement ``prepare_threshold`` times: the server then skips
    parsing and planning it again (the app page's database time went from
    2.3 ms to 0.9 ms). Only on direct connections (see
    :func:`apply_transaction_pooling`); DB_PREPARED_STATEMENTS=false turns it
    off, e.g. behind a pooler the settings cannot see."""
    if not env.bool("DB_PREPARED_STATEMENTS", default=True):
        return {}
    return {
        "server_side_binding": True,
        "prepare_threshold": env.int("DB_PREPARE_THRESHOLD", default=5),
    }


def embedded_database(pgdata: Path, **extra) -> dict:
    config = {
        "ENGINE": "core.db.embedded",
        "PGDATA": str(pgdata),
        "NAME": "postgres",
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": "",
        "PORT": "",
    }
    _merge(config, extra)
    return config


def _merge(config: dict, extra: dict) -> None:
    extra = copy.deepcopy(extra)
    options = {**extra.pop("OPTIONS", {}), **config.get("OPTIONS", {})}
    config.update(extra)
    config["OPTIONS"] = options


def build_databases(env: environ.Env, base_dir: Path) -> dict:
    common = {
        # Reuse connections between requests, and check them first so one the
        # server dropped (restart, failover, idle timeout) is replaced, not a 500.
        "CONN_MAX_AGE": env.int("DB_CONN_MAX_AGE", default=60),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            "connect_timeout": env.int("DB_CONNECT_TIMEOUT", default=5),
            # Names this app's connections in pg_stat_activity and the dashboard.
            "application_name": env.str("DB_APPLICATION_NAME", default="launchpad"),
            **prepared_statement_options(env),
        },
    }
    transaction_pooling = env.str("DB_POOLER", default="").lower() == "transaction"
    url = env.str("DATABASE_URL", default="")
    if url:
        default = database_from_url(
            url, transaction_pooling=transaction_pooling, **common
        )
    else:
        pgdata = Path(
            env.str("EMBEDDED_PGDATA", default=str(base_dir / "var" / "postgres"))
        )
        default = embedded_database(pgdata, **common)
    databases = {"default": default}

    direct_url = env.str("DIRECT_URL", default="")
    if direct_url:
        databases["direct"] = database_from_url(direct_url, **common)
        databases["direct"]["TEST"] = {"MIRROR": "default"}

    read_url = env.str("DATABASE_READ_URL", default="")
    if read_url:
        databases["replica"] = database_from_url(
            read_url, transaction_pooling=transaction_pooling, **common
        )
        databases["replica"]["TEST"] = {"MIRROR": "default"}
    return databases
