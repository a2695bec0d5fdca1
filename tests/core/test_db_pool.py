"""The web's connection pool after PostgreSQL drops every connection (a restart, a failover).

A pool of six idle connections, all six terminated on the server, then one query with the pool's
timeout at 3 s: Django's stock backend checks the dead connections one per turn with psycopg_pool's
backoff (0, 1, 2 s …) and gives up; ours (orderflow.postgresql) tests every idle one on the first
failure, and the query gets a fresh connection."""

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.db import OperationalError, connection
from django.db.backends.postgresql.base import DatabaseWrapper as StockWrapper

from orderflow.postgresql.base import DatabaseWrapper
from tests.conftest import wait_until

pytestmark = pytest.mark.django_db

SIZE = 6


def pooled(wrapper_class):
    """A wrapper of the test database with its own pool, every connection named for this test."""
    name = f"of-pool-test-{uuid.uuid4().hex[:12]}"
    settings = {
        **connection.settings_dict,
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            **connection.settings_dict["OPTIONS"],
            "application_name": name,
            "pool": {"min_size": SIZE, "max_size": SIZE, "timeout": 3.0},
        },
    }
    wrapper = wrapper_class(settings, alias=name)
    wrapper.pool.open(wait=True, timeout=10)
    return wrapper, name


def backends(name: str) -> list[int]:
    with connection.cursor() as c:
        c.execute("SELECT pg_stat_clear_snapshot()")  # the test's transaction would see one snapshot
        c.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [name])
        return [pid for (pid,) in c.fetchall()]


def drop_all(name: str) -> list[int]:
    """What a server restart does to the pool: every connection is gone, the pool does not know."""
    pids = backends(name)
    assert len(pids) == SIZE, pids
    with connection.cursor() as c:
        c.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [pids])
    wait_until(lambda: not set(backends(name)) & set(pids), 10, message="the backends terminated")
    return pids


def query_pid(wrapper) -> int:
    with wrapper.cursor() as c:
        c.execute("SELECT pg_backend_pid()")
        return c.fetchone()[0]


@pytest.fixture
def wrappers():
    made = []

    def make(wrapper_class):
        wrapper, name = pooled(wrapper_class)
        made.append(wrapper)
        return wrapper, name

    yield make
    for wrapper in made:
        wrapper.close()
        wrapper.close_pool()


def test_after_every_connection_is_dropped_the_next_query_gets_a_fresh_one(wrappers):
    wrapper, name = wrappers(DatabaseWrapper)
    dead = drop_all(name)

    pid = query_pid(wrapper)

    assert pid not in dead
    stats = wrapper.pool.get_stats()
    assert stats.get("connections_lost", 0) >= SIZE - 1, stats  # the sweep found the others dead
    wrapper.close()
    # the pool refilled with live connections: the next query needs no sweep
    assert query_pid(wrapper) not in dead


def test_the_stock_backend_stalls_on_the_same_drop(wrappers):
    """Why the subclass exists: the same scenario through Django's backend runs out its timeout.
    If psycopg_pool or Django change this, this test says so, and orderflow.postgresql can go."""
    wrapper, name = wrappers(StockWrapper)
    drop_all(name)

    with pytest.raises(OperationalError):
        query_pid(wrapper)


def test_settings_select_it_when_the_pool_is_on():
    """settings.py: DB_POOL_MAX_SIZE turns the pool on, and with it this backend."""
    root = Path(__file__).resolve().parents[2]

    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='orderflow.settings'; "
        "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])"
    )
    env_base = {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x", "PATH": "/usr/bin:/bin", "DEBUG": "1"}
    on = subprocess.run(
        [sys.executable, "-c", code],
        env={**env_base, "DB_POOL_MAX_SIZE": "4"},
        capture_output=True,
        text=True,
        cwd=root,
    )
    off = subprocess.run([sys.executable, "-c", code], env=env_base, capture_output=True, text=True, cwd=root)
    assert on.stdout.strip() == "orderflow.postgresql", on.stderr
    assert off.stdout.strip() == "django.db.backends.postgresql", off.stderr
