"""The embedded mode `make run` starts without DATABASE_URL: a SQLite file, the Procfile's web,
worker, beat and outbox processes, the demo data. One order goes in over HTTP, the real worker
pays it at the mock gateway and the autopilot ships it — on SQLite, through the ORM paths the
intake and the reservation take there (no PostgreSQL-only statement runs).

Its own SQLite file under tmp_path; the test Redis db; the suite's mock gateway. The processes
are started as `scripts/run_stack.py` starts them (db_init, seed, dev_api_key, then honcho on
the Procfile), with the test settings' short clocks."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import ROOT, Gateway, free_port, wait_until

VENV_BIN = Path(sys.executable).parent


def _embedded_env(tmp_path: Path, gateway_url: str, web_port: int) -> dict[str, str]:
    """The test settings' environment (their secrets and short clocks), as run_stack.py would
    have it in embedded mode: no DATABASE_URL, so orderflow.settings opens SQLITE_PATH."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "PYTEST_ADDOPTS")
    }
    env.update(
        {
            # what run_stack.py sets for embedded mode
            "DJANGO_SETTINGS_MODULE": "orderflow.settings",
            "SQLITE_PATH": str(tmp_path / "orderflow.sqlite3"),
            "REDIS_URL": settings.REDIS_URL,
            "GATEWAY_URL": gateway_url,
            "FULFILLMENT_AUTOPILOT": "1",
            "CARRIER_SIMULATOR": "1",
            "WORKER_CONCURRENCY": "1",
            "WEB_HOST": "127.0.0.1",
            "WEB_PORT": str(web_port),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
            "SECURE_SSL_REDIRECT": "0",
            "SESSION_COOKIE_SECURE": "0",
            "CSRF_COOKIE_SECURE": "0",
            "SECURE_HSTS_SECONDS": "0",
            "VENV_BIN": str(VENV_BIN),
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SUPERUSER_USERNAME": "",
            # the test settings' short clocks
            "FULFILLMENT_AUTOPILOT_STEP_SECONDS": "0.1",
            "CARRIER_STEP_SECONDS": "0.1",
            "CARRIER_EXCEPTION_RATE": "0",
            "OUTBOX_RELAY_AFTER_SECONDS": "0.5",
            "LOG_LEVEL": "INFO",
        }
    )
    return env


def _manage(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, (
        f"manage.py {' '.join(args)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    )
    return out.stdout


class Api:
    def __init__(self, base: str, store: str, key: str):
        self.base, self.headers = base, {"X-Store-ID": store, "Authorization": f"Bearer {key}"}

    def call(self, method: str, path: str, body: dict | None = None, **headers: str) -> tuple[int, dict]:
        req = urllib.request.Request(
            self.base + path,
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={**self.headers, "Content-Type": "application/json", **headers},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture
def embedded_stack(tmp_path, gateway_url):
    """db_init, seed and dev_api_key on a fresh SQLite file, then the Procfile (but the gateway,
    which is the suite's) under honcho, as `make run` does. Yields (Api, log path)."""
    web_port = free_port()
    env = _embedded_env(tmp_path, gateway_url, web_port)
    _manage(env, "db_init")
    _manage(env, "seed")
    store, key = _manage(env, "dev_api_key", "--key-file", str(tmp_path / "dev-api-key")).split()[-2:]
    log = tmp_path / "stack.log"
    with open(log, "wb") as logf:
        proc = subprocess.Popen(
            [
                str(VENV_BIN / "honcho"),
                "start",
                "-f",
                str(ROOT / "Procfile"),
                "web",
                "worker",
                "beat",
                "outbox",
            ],
            cwd=ROOT,
            env=env,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            base = f"http://127.0.0.1:{web_port}"
            wait_until(lambda: _answers(base + "/healthz") or proc.poll() is not None, 30, message="web up")
            wait_until(lambda: b"ready." in log.read_bytes() or proc.poll() is not None, 30, message="worker")
            assert proc.poll() is None, log.read_text(errors="replace")[-4000:]
            yield Api(base, store, key), log
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def test_an_order_is_placed_paid_and_shipped_in_embedded_mode(embedded_stack, gateway_url, tmp_path):
    api, log = embedded_stack
    status, products = api.call("GET", "/api/v1/products?limit=100")
    assert status == 200, products
    product = next(p for p in products["results"] if p["active"] and p["available"] >= 2)
    body = {
        "customer": {"email": "embedded@example.com", "name": "Ada Lovelace"},
        "items": [{"sku": product["sku"], "quantity": 2}],
        "shipping_address": {
            "line1": "1 Test Street",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
        },
        "payment": {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"},
    }
    status, order = api.call("POST", "/api/v1/orders", body, **{"Idempotency-Key": str(uuid.uuid4())})
    assert status == 202, order
    assert order["status"] == "pending" and order["items"][0]["quantity"] == 2

    def shipped():
        _, now = api.call("GET", f"/api/v1/orders/{order['id']}")
        return now if now.get("status") in ("shipped", "delivered") else None

    try:
        final = wait_until(shipped, 45, every=0.25, message="the order shipped")
    except AssertionError:
        print(log.read_text(errors="replace")[-6000:])
        raise
    assert final["payment_status"] == "succeeded"
    assert final["fulfillment_status"] in ("shipped", "delivered")
    _, stock = api.call("GET", f"/api/v1/products/{product['sku']}")
    assert stock["available"] == product["available"] - 2
    charges = Gateway(gateway_url).ledger(order_id=order["id"])
    assert [(c["amount"], c["currency"]) for c in charges] == [(order["total"], order["currency"])]
    # ... and all of it is in this test's SQLite file: the order, and its stock ledger
    with sqlite3.connect(tmp_path / "orderflow.sqlite3") as db:
        hex_id = uuid.UUID(order["id"]).hex
        assert db.execute("SELECT status FROM orders_order WHERE id = ?", [hex_id]).fetchall() == [
            (final["status"],)
        ]
        kinds = db.execute("SELECT kind FROM inventory_stockmovement WHERE order_id = ?", [hex_id]).fetchall()
        assert sorted(k for (k,) in kinds) == ["commit", "reserve"]
    _, events = api.call("GET", f"/api/v1/orders/{order['id']}/events")
    topics = [e["topic"] for e in events["results"]]
    assert topics[0] == "order.created"
    assert "order.paid" in topics and "order.shipped" in topics
