"""What every benchmark shares: the bench environment (own database `of_bench`, Redis db 12),
a fresh database, Django in the orchestrating process, the machine's description, small stats.

The orchestrator (run_all.py or one benchmark script) sets up Django against the bench database
to seed data and poll counts; the servers, workers and the load generator are separate processes.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
VENV_BIN = Path(sys.executable).parent

BENCH_DB = os.environ.get("BENCH_DB", "of_bench")
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DATABASE_URL = f"{PG}/{BENCH_DB}"
REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "12"))
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
HOST = "127.0.0.1"  # the only address any benchmark ever sends traffic to

STORE_SLUG = "bench"
N_PRODUCTS = 200
HUGE_STOCK = 1_000_000  # the services accept at most this per movement


# The bench's own secrets: with DEBUG off the settings refuse unset or development ones.
SECRETS = {
    "SECRET_KEY": "bench-secret-" + "x" * 40,
    "API_KEY_PEPPER": "bench-api-key-pepper-0123456789",
    "CARRIER_SECRETS": "dhl=bench-dhl-carrier-secret,ups=bench-ups-carrier-secret",
    "CARD_VAULT_KEY": "YmVuY2gtY2FyZC12YXVsdC1rZXktMzItYnl0ZXMtISE=",
    "IDEMPOTENCY_FINGERPRINT_KEY": "bench-idempotency-fingerprint-key",
}


def say(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def base_env(**overrides: Any) -> dict[str, str]:
    """The production setup the README documents, pointed at the bench database and Redis db."""
    env = dict(os.environ)
    for k in ("DJANGO_SETTINGS_MODULE", "CELERY_BROKER_URL", "SQLITE_PATH", "PYTEST_ADDOPTS"):
        env.pop(k, None)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "orderflow.settings",
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            **SECRETS,
            # plain http on 127.0.0.1
            "SECURE_SSL_REDIRECT": "0",
            "SESSION_COOKIE_SECURE": "0",
            "CSRF_COOKIE_SECURE": "0",
            "SECURE_HSTS_SECONDS": "0",
            "API_THROTTLE_RATE": "100000000/min",
            "PUBLIC_THROTTLE_RATE": "100000000/min",
            "CARRIER_THROTTLE_RATE": "100000000/min",
            "FULFILLMENT_AUTOPILOT": "1",
            "FULFILLMENT_AUTOPILOT_STEP_SECONDS": "0",
            "CARRIER_SIMULATOR": "0",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    env.update({k: str(v) for k, v in overrides.items()})
    return env


_django_ready = False


def django_setup() -> None:
    """Django in this (orchestrating) process, on the bench database."""
    global _django_ready
    if _django_ready:
        return
    os.environ.update(base_env())
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    _django_ready = True


def reset_database() -> None:
    """Drop and recreate `of_bench`, then `manage.py db_init` (migrations, schedules)."""
    import psycopg

    if _django_ready:
        from django.db import connections

        connections.close_all()
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    subprocess.run(
        [sys.executable, "manage.py", "db_init", "-v", "0"],
        cwd=ROOT,
        env=base_env(),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    if _django_ready:  # the order-number sequences this process cached belong to the dropped database
        from orders import services as order_services

        order_services._known_sequences.clear()


def flush_redis() -> None:
    """FLUSHDB on the bench Redis db only (never db 0 or 9)."""
    import redis

    assert REDIS_DB not in (0, 9)
    redis.Redis.from_url(REDIS_URL).flushdb()


def redis_client():
    import redis

    return redis.Redis.from_url(REDIS_URL)


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    load = os.getloadavg()
    return {
        "nproc": os.cpu_count(),
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu": cpu,
        "load": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def wait_for(predicate, timeout: float, interval: float = 0.2, message: str = "condition") -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {message}")


def save_json(name: str, data: Any) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str))
    return path


def vacuum_analyze() -> None:
    """What autovacuum does between two runs in production: this machine's PostgreSQL runs with
    autovacuum off, so each run would otherwise meet the dead rows of the runs before it (an order
    row is updated about eight times on its way) and tables never analysed: measured at `-c 4`
    three times on one database, to paid 54.1, 52.1, 45.5 orders/s; with this before each run,
    49.9, 49.7, 48.5. bench/pipeline.py runs it before each run, bench/flow_cost.py --cpu before its tasks."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
