"""Several hosts, simulated honestly (tests/cluster/harness.py): `control` (outbox dispatcher and
beat), `web`, worker host `a` (the payments worker) and worker host `b` (a worker per queue,
payments included), each in its own network namespace, started from deploy/Procfile's lines.

1,000 orders go in through the web host's API (1 in 50 with a card the bank declines). While the
workers are charging them, host `a` loses its link and every one of its processes is SIGKILLed.
Then: every order is paid, or failed with the bank's decline code; no order is charged twice at
the gateway (its ledger, one charge per idempotency key); the payments tasks `a` had taken and
not finished were run to the end by `b` — the same task ids, redelivered (or, for a message lost
in flight, the order re-driven by the reconciler); the stock ledger balances — the reliability
suite's `assert_invariants`, run on this cluster.

The hosts run the production settings module with the suite's secrets, a broker visibility timeout
of 10 s (a lost host's unacked Redis messages come back after it) and the reconciler's production
backlog rule (no re-drives while the payments queue is behind)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from tests.cluster.harness import DEPLOY, Cluster, place_orders, start_layout
from tests.factories import make_key, make_product, make_store, order_body
from tests.reliability.conftest import FINAL, PAID_OR_LATER, assert_invariants, report

ORDERS = 1000
DECLINE_EVERY = 50  # order i with i % 50 == 0 carries the bank's generic-decline test card
DECLINE_CARD = "4000000000000002"
SKUS = [f"CL-{i}" for i in range(5)]
RECEIVED = re.compile(r"Task (payments\.[\w.]+)\[([0-9a-f-]{36})\] received")
DONE = re.compile(r"Task (payments\.[\w.]+)\[([0-9a-f-]{36})\] (?:succeeded|failed|retry|raised)")


def cluster_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The hosts' environment: this run's settings as variables (secrets, short clocks), the
    production settings module, and the clocks a cluster run needs."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="orderflow.settings",
        VENV_BIN=str(Path(sys.executable).parent),
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="INFO",
        CELERY_VISIBILITY_TIMEOUT="10",
        OUTBOX_RELAY_AFTER_SECONDS="5",  # beat's relay is the backstop, as in production
        RECONCILE_STUCK_AFTER_SECONDS="20",
        RECONCILE_BACKLOG_LIMIT="20",  # behind, not stuck: no re-drives while the queues are deep
        **(extra or {}),
    )
    return env


def service_urls(gateway_url: str) -> dict[str, str]:
    db = settings.DATABASES["default"]
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return {
        "DATABASE_URL": f"postgres://{db['USER']}@{host}:{port}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,  # Redis or an amqp:// vhost: forwarded either way
        "GATEWAY_URL": gateway_url,
    }


class Ran:
    """What `assert_invariants` asks of the stack that ran the scenario."""

    def __init__(self, cluster: Cluster) -> None:
        control = cluster.hosts["control"]
        self.dispatcher = _Process(control.procs["dispatcher"], control.logs["dispatcher"])

    @staticmethod
    def broker_busy() -> dict[str, int]:
        from orderflow.observability.cluster import queue_depths

        return {q: n for q, n in queue_depths().items() if n}


class _Process:
    def __init__(self, proc: subprocess.Popen, log: Path) -> None:
        self.proc, self.log = proc, log

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def task_ids(text: str, pattern: re.Pattern) -> set[str]:
    return {m.group(2) for m in pattern.finditer(text)}


def in_flight(host) -> set[str]:
    """Payments tasks the host's worker received and has not finished (by its own log)."""
    text = host.log("worker-payments")
    return task_ids(text, RECEIVED) - task_ids(text, DONE)


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_a_worker_host_lost_mid_run_loses_no_order_and_charges_none_twice(
    transactional_db, gateway, tmp_path
):
    started = time.monotonic()
    call_command("db_init", "--skip-migrate", verbosity=0)  # beat's schedules (a flush removes them)
    store = make_store("cluster", name="Cluster")
    store.settings = {"fraud_check_enabled": False}  # not under test; its velocity rules would hold orders
    store.save(update_fields=["settings"])
    for sku in SKUS:
        make_product(store, sku, stock=ORDERS)
    key = make_key(store)
    gateway.control(latency_ms=100)  # charges take a while: the lost host has some in flight
    bodies = [
        order_body(
            (SKUS[i % len(SKUS)], 1), card=DECLINE_CARD if i % DECLINE_EVERY == 0 else "4242424242424242"
        )
        for i in range(ORDERS)
    ]

    from orders.models import Order

    orders = Order.all_stores.filter(store=store)
    with Cluster(cluster_env(), service_urls(gateway.url), logs=tmp_path / "cluster") as cluster:
        workers = {"a": ["worker-payments"], "b": [p for p in DEPLOY if p.startswith("worker-")]}
        base = start_layout(cluster, workers)
        a, b = cluster.hosts["a"], cluster.hosts["b"]
        up = time.monotonic()

        placed: list[dict] = []
        encoded = [json.dumps(body).encode() for body in bodies]
        placing = threading.Thread(target=lambda: placed.extend(place_orders(base, store.slug, key, encoded)))
        placing.start()
        # Mid-run: once a third of the orders are paid, at a moment `a` holds charges in flight.
        deadline = time.monotonic() + 240
        while not (orders.filter(status__in=PAID_OR_LATER).count() >= ORDERS // 3 and in_flight(a)):
            assert time.monotonic() < deadline, (
                f"no progress to cut at: {Counter(orders.values_list('status', flat=True))}"
            )
            time.sleep(0.1)
        cluster.cut(a)
        killed = cluster.kill(a)
        lost = in_flight(a)
        cut_at, paid_at_cut = time.monotonic(), orders.filter(status__in=PAID_OR_LATER).count()
        placing.join(240)
        assert len(placed) == ORDERS, f"{len(placed)} of {ORDERS} orders accepted"

        # The survivors bring every order to rest (beat's reconciler runs on `control`).
        last, still = None, time.monotonic()
        while moving := orders.exclude(status__in=FINAL | PAID_OR_LATER).count():
            if moving != last:
                last, still = moving, time.monotonic()
            assert time.monotonic() - still < 90, f"{moving} orders stopped moving"
            time.sleep(0.5)
        settled_at = time.monotonic()
        states = assert_invariants(store, gateway, stack=Ran(cluster))

        survivor_done = task_ids(b.log("worker-payments"), DONE)
        redelivered = lost & survivor_done
        from orderflow.core.events import Event

        reconciled = Event.all_stores.filter(store=store, topic="order.reconciled").count()

    assert killed >= 3, f"host a had {killed} processes (a worker parent and its children expected)"
    assert lost, "host a held no payments task when it was lost"
    assert redelivered, f"none of the {len(lost)} tasks host a held was run by host b"
    assert len(lost - survivor_done) <= reconciled, (
        f"tasks host a held that host b never ran nor the reconciler re-drove: {sorted(lost - survivor_done)}"
    )
    declined = {str(o["id"]) for i, o in enumerate(placed) if i % DECLINE_EVERY == 0}
    by_id = {str(o.pk): o for o in orders.select_related("payment")}
    for oid, order in by_id.items():
        if oid in declined:
            assert order.status == "payment_failed" and order.payment.decline_code == "generic_decline", oid
        else:
            assert order.status in PAID_OR_LATER, (oid, order.status)
    charges = gateway.ledger(store=store.slug)
    keys = Counter(c["idempotency_key"] for c in charges)
    assert len(charges) == ORDERS - len(declined) and max(keys.values()) == 1

    report(
        "cluster",
        orders=ORDERS,
        states=states,
        seconds_total=round(time.monotonic() - started, 1),
        seconds_hosts_up=round(up - started, 1),
        seconds_to_settled=round(settled_at - up, 1),
        seconds_after_cut=round(settled_at - cut_at, 1),
        paid_at_cut=paid_at_cut,
        killed_processes=killed,
        lost_tasks=len(lost),
        redelivered_to_b=len(redelivered),
        reconciled_orders=reconciled,
        broker=settings.CELERY_BROKER_URL.split(":", 1)[0],
    )
