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

Then, with `--cpu N`, what those statements cost (`statement_cpu`): N orders of 3 lines are placed,
the database is vacuumed and analysed (as autovacuum keeps it: without statistics the ledger
reads scanned the store's whole ledger), their events published, and each order's message run
here, as above: for half of them the whole task's CPU, this process's and PostgreSQL's backend's;
for the other half, per statement of the task, in its order: the CPU this process spent since the
statement before (building it, reading the last one's rows, the code between: the gateway call
sits before the second transaction's first statement), the CPU it spent inside the driver's call
(psycopg adapting the parameters, sending, parsing the answer: what any way of writing the
statement pays, where the time before it is mostly the ORM's) and the CPU PostgreSQL's backend spent
running it (its /proc schedstat, so only where PostgreSQL runs on this machine, as the bench's
does). Means over the N orders. A figure per statement, where orders/s on a shared box move by a
quarter between runs. The whole-task half is also sampled by py-spy (when installed), for the
worker's CPU by layer: the driver, the ORM outside it, the HTTP and Redis clients, the rest.

    .venv/bin/python bench/flow_cost.py [--lines 1 5 20] [--cpu 200]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, profile
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


@contextlib.contextmanager
def published_messages() -> Iterator[list[tuple[str, tuple, dict, float]]]:
    """Every Celery message published inside the block, as (task, args, kwargs, countdown)."""
    from celery.signals import before_task_publish

    sent: list[tuple[str, tuple, dict, float]] = []

    def record(sender=None, body=None, headers=None, **kw):
        args, kwargs, _embed = body
        sent.append((headers["task"], tuple(args), dict(kwargs), float(headers.get("countdown") or 0)))

    before_task_publish.connect(record, weak=False)
    try:
        yield sent
    finally:
        before_task_publish.disconnect(record)


def measure(lines: int, data: dict[str, Any]) -> dict[str, Any]:
    from celery import current_app
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.data import sku
    from bench.loadgen import card_number
    from orderflow.core.outbox import dispatch_pending
    from orders.models import Order

    with published_messages() as sent:
        order_id = place_order(
            Client(),
            data,
            email=f"flow{lines}@example.com",
            skus=[sku(i) for i in range(1, lines + 1)],
            card=card_number(lines, random.Random(lines)),
            key=f"flow-cost-{lines}-{time.time_ns()}",
        )
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


def place_order(client, data: dict[str, Any], *, email: str, skus: list[str], card: str, key: str) -> str:
    """One order of these SKUs (one unit each) through the API; its id (asserts the 202)."""
    body = {
        "customer": {"email": email, "name": "Flow Cost"},
        "shipping_address": {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345",
                             "country": "US"},
        "items": [{"sku": s, "quantity": 1} for s in skus],
        "payment": {"card_number": card, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
    }  # fmt: skip
    response = client.post(
        "/api/v1/orders",
        data=body,
        content_type="application/json",
        headers={
            "X-Store-ID": data["store"],
            "Authorization": f"Bearer {data['key']}",
            "Idempotency-Key": key,
        },
    )
    assert response.status_code == 202, response.content
    return response.json()["id"]


def _backend_cpu_reader():
    """A reader of the CPU seconds PostgreSQL's backend for this process's connection has run so
    far, and whether it can be read (not for a server on another machine: then it reads 0)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        path = Path(f"/proc/{cur.fetchone()[0]}/schedstat")

    def read() -> float:
        return int(path.read_text().split()[0]) / 1e9

    try:
        read()
    except OSError:
        return (lambda: 0.0), False
    return read, True


def statement_cpu(orders: int, data: dict[str, Any], lines: int = 3) -> dict[str, Any]:
    """CPU per statement of the accepted-to-paid task, this process's and PostgreSQL's (module
    docstring). Orders placed through the API; their messages run here one after the other."""
    from celery import current_app
    from django.db import connection
    from django.test import Client

    from bench.data import sku
    from bench.loadgen import card_number
    from orderflow.core.outbox import dispatch_pending

    client, rng = Client(), random.Random(7)
    for i in range(orders):
        skus = [sku(j) for j in rng.sample(range(1, common.N_PRODUCTS + 1), lines)]
        place_order(client, data, email=f"cpu{i}-{time.time_ns()}@example.com", skus=skus,
                    card=card_number(i, rng), key=f"flow-cpu-{i}-{time.time_ns()}")  # fmt: skip
    common.vacuum_analyze()
    with published_messages() as sent:
        dispatch_pending()
    tasks = [m[:3] for m in sent if not m[0].startswith("dashboard.")]
    backend, have_backend = _backend_cpu_reader()
    per: dict[int, list] = collections.defaultdict(list)
    state = {"last": 0.0, "i": 0}

    def measure_statement(execute, sql, params, many, context):
        built = time.process_time()
        pg = backend()  # the instrument's reads of /proc fall outside both of this process's figures
        called = time.process_time()
        try:
            return execute(sql, params, many, context)
        finally:
            returned = time.process_time()
            pg = backend() - pg
            per[state["i"]].append((" ".join(sql.split())[:90], built - state["last"], pg, returned - called))
            state["i"] += 1
            state["last"] = time.process_time()

    def run_task(name: str, task_args: tuple, task_kwargs: dict) -> tuple[float, float]:
        state["i"] = 0
        cpu0, pg0 = time.process_time(), backend()
        state["last"] = cpu0
        current_app.tasks[name].apply(args=task_args, kwargs=task_kwargs)
        return time.process_time() - cpu0, backend() - pg0

    # the first half for the whole task's CPU, the second half statement by statement (the
    # instrument's own reads of /proc would otherwise count in the first figure)
    half = len(tasks) // 2
    # py-spy pauses this process for each sample (paused, it spends no CPU) and leaves out the
    # samples where it waits on a socket: the shares are of the CPU
    spies = profile.record([os.getpid()], 600, "flow-cost", blocking=True)
    whole = [run_task(*t) for t in tasks[:half]]
    for spy in spies:
        spy.send_signal(signal.SIGINT)  # py-spy writes what it has and exits
    sampled = profile.collect(spies, "flow-cost", 0) if spies else {}
    with connection.execute_wrapper(measure_statement):
        for t in tasks[half:]:
            run_task(*t)
    n = len(whole) or 1
    rows = [
        {
            "n": len(v),
            "sql": v[0][0],
            "python_ms": round(1000 * sum(x[1] for x in v) / len(v), 3),
            "driver_ms": round(1000 * sum(x[3] for x in v) / len(v), 3),
            "postgres_ms": round(1000 * sum(x[2] for x in v) / len(v), 3) if have_backend else None,
        }
        for _i, v in sorted(per.items())
    ]
    return {
        "orders": len(tasks),
        "lines": lines,
        "tasks": sorted({t[0] for t in tasks}),
        "python_ms_per_order": round(1000 * sum(w[0] for w in whole) / n, 2),
        "postgres_ms_per_order": round(1000 * sum(w[1] for w in whole) / n, 2) if have_backend else None,
        "statements": rows,
        # of the worker's CPU per order: what the statements cost it outside the driver (the ORM
        # building them and reading the rows before, the code between) and inside (psycopg
        # adapting the parameters, sending, parsing the answer)
        "python_outside_driver_ms": round(sum(r["python_ms"] for r in rows), 2),
        "python_in_driver_ms": round(sum(r["driver_ms"] for r in rows), 2),
        # the whole-task half sampled by py-spy (when installed): the worker's CPU by layer
        "layers_pct": sampled.get("layers_pct"),
    }


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
            cpu = statement_cpu(args.cpu, data) if getattr(args, "cpu", 0) else None
    finally:
        gateway.terminate()
        gateway.wait(10)
        common.flush_redis()
    say("From accepted (202) to paid, per order (messages: Celery messages sent; SQL: statements run)")
    say(f"{'lines':>5} {'messages':>8} {'SQL':>5}  messages by task / SQL by step")
    for r in results:
        say(f"{r['lines']:>5} {r['messages']:>8} {r['statements']:>5}  {r['messages_by_task']}")
        say(f"{'':>20}  {r['statements_by_step']}")
    if cpu is None:
        return {"by_lines": results}
    say(f"CPU of the accepted-to-paid task, {cpu['orders']} orders of {cpu['lines']} lines, mean per order "
        f"(half of them; the other half statement by statement): this process "
        f"{cpu['python_ms_per_order']} ms, PostgreSQL {cpu['postgres_ms_per_order']} ms")  # fmt: skip
    say(f"{'#':>3} {'python ms':>9} {'driver':>6} {'pg ms':>6}  statement (python: since the one before)")
    for i, r in enumerate(cpu["statements"]):
        pg = r["postgres_ms"] or 0
        say(f"{i:>3} {r['python_ms']:>9.3f} {r['driver_ms']:>6.3f} {pg:>6.3f}  {r['sql'][:70]}")
    say(f"statement by statement, this process per order: {cpu['python_outside_driver_ms']} ms outside the "
        f"driver, {cpu['python_in_driver_ms']} ms inside it")  # fmt: skip
    return {"by_lines": results, "cpu": cpu}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--cpu", type=int, default=0, help="N orders for the CPU per statement (0: off)")
    common.save_json("flow_cost", run(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
