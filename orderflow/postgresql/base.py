"""Django's PostgreSQL backend; its psycopg_pool sweeps every idle connection once one fails its check.

Why: a PostgreSQL restart or failover drops every pooled connection at once. Django gives the pool
psycopg_pool's per-connection check, and psycopg_pool checks the idle connections one per
`getconn()`, sleeping 0, 1, 2, 4 s between failed checks: a web process with five dead connections
held its next request 10 s and answered 503 (DB_POOL_TIMEOUT). Here the first failed check tests
every other idle connection at once (`pool.check()`, one round trip each, dead ones replaced), so
the request that met it waits for one new connection, not for the backoff.

Django builds the pool itself and passes `check=` (so the pool OPTIONS cannot carry another one);
the check is wrapped on the pool Django built. psycopg_pool keeps it in `_check` (pinned in
requirements.txt; tests/core/test_db_pool.py fails if that stops holding).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.backends.postgresql import base


def sweep_on_failure(pool: Any, check: Callable[[Any], None]) -> Callable[[Any], None]:
    """`check`, which on a failure first has the pool test (and replace) its other idle connections."""

    def check_or_sweep(conn: Any) -> None:
        try:
            check(conn)
        except Exception:
            pool.check()
            raise

    check_or_sweep.sweeps = True  # type: ignore[attr-defined]
    return check_or_sweep


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self):
        pool = super().pool
        check = getattr(pool, "_check", None)
        if check is not None and not getattr(check, "sweeps", False):
            pool._check = sweep_on_failure(pool, check)
        return pool
