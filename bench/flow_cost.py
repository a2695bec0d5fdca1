"""Flow cost: the Celery messages and SQL statements one order costs from accepted (202) to paid.

Deterministic, one process: the order is placed through the API (in-process test client), its
events wait in the outbox, and this script plays dispatcher and worker by
turns: `dispatch_pending()` publishes what is committed (its statements are counted), every Celery
message published is recorded (kombu's `before_task_publish`) and then run here with
`Task.apply()` (its statements counted), until the order is paid. The gateway is the real mock
gateway process. A message with a countdown is a retry, not the happy path: counted, not run.

Counted: every statement on the default connection from the 202 until the order is paid, and
every message sent on the way, whatever its task. Run for 1, 5 and 20 lines, after one order that
is not counted (the process's first dispatch also publishes what the seed left in the outbox): the
cost must not grow with the line count.

    .venv/bin/python bench/flow_cost.py [--lines 1 5 20]
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.common import say

GATEWAY_PORT = 18791


def _start_gateway() -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mock_gateway", "--port", str(GATEWAY_PORT)],
        cwd=common.ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**common.base_env(), "MOCK_GATEWAY_LATENCY_MS": "0"},
    )

    def up() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{GATEWAY_PORT}/health", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    common.wait_for(up, 20, message="mock gateway")
    return proc


def measure(lines: int, data: dict[str, Any]) -> dict[str, Any]:
    from celery import current_app
    from celery.signals import before_task_publish
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.data import sku
    from bench.loadgen import card_number
    from orderflow.core.outbox import dispatch_pending
    from orders.models import Order

    sent: list[tuple[str, tuple, dict, float]] = []

    def record(sender=None, body=None, headers=None, **kw):
        args, kwargs, _embed = body
        sent.append((headers["task"], tuple(args), dict(kwargs), float(headers.get("countdown") or 0)))

    before_task_publish.connect(record, weak=False)
    try:
        body = {
            "customer": {"email": f"flow{lines}@example.com", "name": "Flow Cost"},
            "shipping_address": {
                "line1": "1 Main St",
                "city": "Springfield",
                "postal_code": "12345",
                "country": "US",
            },  # fmt: skip
            "items": [{"sku": sku(i), "quantity": 1} for i in range(1, lines + 1)],
            "payment": {
                "card_number": card_number(lines, random.Random(lines)),
                "exp_month": 12,
                "exp_year": 2030,
                "cvc": "123",
            },  # fmt: skip
        }
        client = Client()
        response = client.post(
            "/api/v1/orders",
            data=body,
            content_type="application/json",
            headers={
                "X-Store-ID": data["store"],
                "Authorization": f"Bearer {data['key']}",
                "Idempotency-Key": f"flow-cost-{lines}-{time.time_ns()}",
            },  # fmt: skip
        )
        assert response.status_code == 202, response.content
        order_id = response.json()["id"]
        sent.clear()
        messages: list[tuple[str, float]] = []
        statements = 0
        live_push = 0
        by_task: collections.Counter[str] = collections.Counter()
        sql_by_step: collections.Counter[str] = collections.Counter()
        deadline = time.monotonic() + 60

        def paid() -> bool:
            return Order.all_stores.filter(pk=order_id, paid_at__isnull=False).exists()

        while not paid():
            if time.monotonic() > deadline:
                raise RuntimeError(f"order {order_id} not paid: {Order.all_stores.get(pk=order_id).status}")
            with CaptureQueriesContext(connection) as q:
                dispatch_pending()
            statements += len(q)
            sql_by_step["dispatcher"] += len(q)
            batch, sent[:] = list(sent), []
            for name, args, kwargs, countdown in batch:
                if name.startswith("dashboard."):  # the live stats push: per store and throttled
                    live_push += 1
                    continue
                messages.append((name, countdown))
                by_task[name] += 1
                if countdown:
                    continue
                with CaptureQueriesContext(connection) as q:
                    current_app.tasks[name].apply(args=args, kwargs=kwargs)
                statements += len(q)
                sql_by_step[name] += len(q)
                if os.environ.get("FLOW_COST_SQL"):
                    for query in q.captured_queries:
                        print("   ", query["sql"][:160])
                if paid():
                    break
            if not batch:
                time.sleep(0.05)
        return {
            "lines": lines,
            "messages": len(messages),
            "statements": statements,
            "messages_by_task": dict(by_task),
            "statements_by_step": dict(sql_by_step),
            "live_push_messages": live_push,
        }
    finally:
        before_task_publish.disconnect(record)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Fresh bench database; the figures for each line count (also `make bench`'s flow_cost)."""
    common.reset_database()
    common.flush_redis()
    common.django_setup()
    from django.test import override_settings

    from bench import data as bench_data

    data = bench_data.seed()
    gateway = _start_gateway()
    try:
        # events wait in the outbox for this script to publish; the journey ends at paid here
        with override_settings(
            GATEWAY_URL=f"http://127.0.0.1:{GATEWAY_PORT}",
            FULFILLMENT_AUTOPILOT=False,
        ):
            # one order first, not counted: the process's first dispatch also publishes what the
            # seed left in the outbox and fills the publish filters' caches (4 statements once)
            measure(1, data)
            results = [measure(n, data) for n in args.lines]
    finally:
        gateway.terminate()
        gateway.wait(10)
        common.flush_redis()
    say("From accepted (202) to paid, per order (messages: Celery messages sent; SQL: statements run)")
    say(f"{'lines':>5} {'messages':>8} {'SQL':>5}  messages by task / SQL by step")
    for r in results:
        say(f"{r['lines']:>5} {r['messages']:>8} {r['statements']:>5}  {r['messages_by_task']}")
        say(f"{'':>20}  {r['statements_by_step']}")
    return {"by_lines": results}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[1, 5, 20])
    common.save_json("flow_cost", run(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
