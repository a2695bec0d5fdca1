"""Faults injected into the real processes while orders flow: Redis stopped, the broker (RabbitMQ,
when the session runs on it) restarted, the worker SIGKILLed, the gateway down and flaky,
PostgreSQL connections dropped. Each ends with the invariants."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db import connection

from alerts.models import Alert
from inventory.models import StockMovement
from orderflow.core.events import Event
from orders.models import IdempotencyRecord, Order, OrderItem
from payments.models import Payment
from payments.tasks import probe_gateway
from tests.conftest import wait_until
from tests.factories import make_product, order_body
from tests.reliability.conftest import (
    FINAL,
    ON_RABBITMQ,
    PAID_OR_LATER,
    assert_invariants,
    error_shape_problems,
    make_shop,
    report,
    terminate_web_backends,
    wait_settled,
)

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


class OrderStream:
    """`clients` threads posting orders back to back (unique keys) until stopped; every answer is
    kept with the phase it was sent in."""

    def __init__(self, api, sku: str, clients: int = 3, pause: float = 0.05):
        self.api, self.sku, self.clients, self.pause = api, sku, clients, pause
        self.phase = "before"
        self.results: list[tuple[str, int | None, str, float]] = []  # phase, status, code/error, seconds
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(clients)]
        self._lock = threading.Lock()

    def _run(self) -> None:
        while not self._stop.is_set():
            phase, started = self.phase, time.monotonic()
            try:
                r = self.api.post_order(order_body((self.sku, 1)))
                code = "" if r.status_code == 202 else (r.json().get("error", {}).get("code", "?"))
                if r.status_code >= 500 and error_shape_problems(r):
                    code = f"BAD SHAPE {r.text[:200]}"
                row = (phase, r.status_code, code, time.monotonic() - started)
            except (requests.RequestException, ValueError) as exc:
                row = (phase, None, repr(exc)[:200], time.monotonic() - started)
            with self._lock:
                self.results.append(row)
            time.sleep(self.pause)

    def __enter__(self) -> OrderStream:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def statuses(self, phase: str | None = None) -> Counter:
        return Counter(s for p, s, _c, _t in self.results if phase is None or p == phase)

    def max_latency(self, phase: str) -> float:
        return max((t for p, _s, _c, t in self.results if p == phase), default=0.0)


# What a restart can stop: Redis (on Redis the broker too); on RabbitMQ also the broker alone.
RESTARTABLE = ["redis", "rabbitmq"] if ON_RABBITMQ else ["redis"]


@pytest.mark.parametrize("service", RESTARTABLE)
def test_service_stopped_for_10s_never_a_500_and_every_accepted_order_is_paid(rel, gateway, service):
    """Redis, or RabbitMQ: stopped under a stream of orders, then started again.

    RabbitMQ alone: intake never talks to the broker (the order and its events commit to
    PostgreSQL; the outbox dispatcher publishes them), so every order is accepted (202) throughout;
    the dispatcher's publishes fail while the node is down (publisher confirms: none is thought sent
    that RabbitMQ did not take) and the events go out once it is back. The workers reconnect; a
    message they held unacknowledged when the node went down is delivered again (quorum queues keep
    their messages across the restart), and the gateway's idempotency key keeps it one charge.

    Redis (the rest of this docstring). Decision. The design notes make ACCEPTING the goal while
    Redis is down: the order, its lines, its reservation and its `order.created` event commit to
    PostgreSQL in one transaction, the after-commit publish fails fast and the outbox relay sends
    it later. But the card does not live in PostgreSQL: the contract forbids storing it, and the
    card vault (core/vault.py) is Redis. An order taken while the vault cannot be written can never
    be paid (`card_token_expired`). So the right answer depends on where the card can go:
      * 202 when the order can complete — the card kept somewhere that survives the outage;
      * 503 `service_unavailable` when it cannot ("only where the request truly cannot be served"),
        with nothing written, so the shopper's retry (same key) goes through once Redis is back;
      * never a 500, and never a 202 for an order that is then failed for our own fault.
    The test accepts exactly these two coherent behaviours and checks both halves of each: every
    202 is an order that gets paid, every 503 left nothing behind.

    "Stopped" is a clean shutdown that saves the data set, then a restart that loads it (a Redis
    with persistence): queues and vault survive, as in production. A Redis that loses its data is
    another failure (the stuck-order reconciler's).
    """
    shop = make_shop(rel, f"rel-{service}", autopilot=True)
    make_product(shop.store, "TEE", price="9.99", stock=5000)
    rel.start_worker()
    stopped = rel.redis if service == "redis" else rel.broker

    with OrderStream(shop.api, "TEE", clients=2, pause=0.3) as stream:
        time.sleep(2)
        stream.phase = "outage"
        stopped.stop(persist=True)
        down_at = time.monotonic()
        time.sleep(10)
        stream.phase = "after"
        stopped.start()
        outage = time.monotonic() - down_at
        time.sleep(2)

    by_phase = {p: dict(stream.statuses(p)) for p in ("before", "outage", "after")}
    # Collect every broken promise first and fail once at the end, so one run shows them all.
    problems = []
    wrong = [r for r in stream.results if r[1] not in (202, 503)]
    if wrong:
        problems.append(f"{len(wrong)} answers neither 202 nor 503, e.g. {wrong[:3]}; by phase {by_phase}")
    if set(by_phase["after"]) != {202}:
        problems.append(f"not every order accepted once {service} was back: {by_phase}")
    if stopped is not rel.redis and set(stream.statuses()) != {202}:
        problems.append(f"orders refused while only the broker was down: {by_phase}")
    in_db = Order.all_stores.filter(store=shop.store).count()
    accepted = sum(by_phase[p].get(202, 0) for p in by_phase)
    if in_db != accepted:
        problems.append(f"{in_db} orders in the database but {accepted} answers said accepted")

    started = time.monotonic()
    wait_settled(shop.store, 120, autopilot=True)  # the relay publishes what the outage held back
    settle = time.monotonic() - started
    states = assert_invariants(shop.store, gateway, autopilot=True)
    paid = sum(n for s, n in states.items() if s in PAID_OR_LATER)
    lost_cards = Payment.all_stores.filter(store=shop.store, error_code="card_token_expired").count()
    report(
        f"{service}_outage",
        outage_seconds=round(outage, 1),
        by_phase=by_phase,
        max_latency_during_outage=round(stream.max_latency("outage"), 2),
        settle_seconds=round(settle, 1),
        states=states,
        payments_failed_card_token_expired=lost_cards,
    )
    if paid != in_db:
        problems.append(f"{in_db - paid} of {in_db} orders not paid ({lost_cards} lost their card): {states}")
    assert not problems, "\n".join(problems)


@pytest.mark.timeout(420)
def test_worker_sigkilled_every_few_seconds_during_300_orders_all_complete_without_double_charge(
    rel, gateway
):
    shop = make_shop(rel, "rel-kill")
    make_product(shop.store, "TEE", price="9.99", stock=1000)
    rel.start_worker()

    started = time.monotonic()
    responses: list[requests.Response] = []
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(shop.api.post_order, order_body(("TEE", 1))) for _ in range(300)]
        kills = 0
        # SIGKILL the whole worker (prefork parent and children) every ~3 s of its life, restart it
        # each time: through ingest and the first part of the pipeline's work
        while kills < 8:
            time.sleep(3)
            rel.kill_worker()
            kills += 1
            rel.start_worker()
        responses = [f.result() for f in futures]
    ingest = time.monotonic() - started
    assert Counter(r.status_code for r in responses) == {202: 300}

    wait_settled(shop.store, 240)
    # On Redis, messages the last victims held sit in its `unacked` set until a worker restores
    # them, which kombu does at start-up (and otherwise only every few minutes) for entries older
    # than the visibility timeout: once that has passed, restart the worker, as a deploy would.
    # RabbitMQ requeued them when each victim's connection closed.
    if rel.broker.redelivery_after:
        time.sleep(rel.broker.redelivery_after)
        rel.kill_worker()
        rel.start_worker()
    total = time.monotonic() - started
    states = assert_invariants(shop.store, gateway)
    assert set(states) <= PAID_OR_LATER, states  # the gateway was healthy: every order paid
    report(
        "worker_sigkill",
        kills=kills,
        ingest_seconds=round(ingest, 1),
        total_seconds=round(total, 1),
        states=states,
    )


def test_gateway_outage_of_15s_and_30_percent_failures_orders_end_paid_or_failed_and_alert_resolves(
    rel, gateway
):
    shop = make_shop(rel, "rel-gateway")
    make_product(shop.store, "TEE", price="9.99", stock=1000)
    rel.start_worker()
    gateway.control(failure_rate=0.3, seed=11)

    started = time.monotonic()
    with OrderStream(shop.api, "TEE", clients=2, pause=0.2) as stream:
        time.sleep(2)
        stream.phase = "outage"
        gateway.control(outage=True)
        opened = wait_until(
            lambda: shop.api.get("/api/v1/alerts?kind=gateway_down&status=open").json()["results"],
            15,
            message="the gateway_down alert opened",
        )
        time.sleep(max(0.0, 15 - (time.monotonic() - started - 2)))
        gateway.control(outage=False)
        stream.phase = "after"
        time.sleep(2)
    assert set(stream.statuses()) == {202}, stream.statuses()

    wait_settled(shop.store, 120)
    elapsed = time.monotonic() - started
    states = assert_invariants(shop.store, gateway)
    assert set(states) <= PAID_OR_LATER | {"payment_failed"}, states

    alert_id = opened[0]["id"]

    def resolved() -> bool:
        # Beat's breaker probe: the last failures of the burst may have re-opened the breaker
        # after the final order, and only a probe (not traffic) can close it then.
        probe_gateway.delay()
        return {a["status"] for a in shop.api.get("/api/v1/alerts?kind=gateway_down").json()["results"]} == {
            "resolved"
        }

    wait_until(resolved, 30, every=1, message="the gateway_down alert resolved")
    alerts = Alert.all_stores.filter(store=shop.store, kind="gateway_down")
    assert alerts.filter(status="resolved").exists() and not alerts.exclude(status="resolved").exists()
    assert str(alerts.order_by("first_seen_at").first().pk) == str(alert_id)
    down = Event.all_stores.filter(store=shop.store, topic="gateway.down").count()
    up = Event.all_stores.filter(store=shop.store, topic="gateway.up").count()
    assert down >= 1 and up >= 1
    report(
        "gateway_outage",
        orders=sum(states.values()),
        seconds=round(elapsed, 1),
        states=states,
        gateway_down_events=down,
        gateway_up_events=up,
        retrying_alerts=Alert.all_stores.filter(store=shop.store, kind="payment_retrying").count(),
    )


def test_postgres_connections_dropped_during_ingest_never_leave_a_half_written_order(rel, gateway):
    shop = make_shop(rel, "rel-pgdrop")
    make_product(shop.store, "TEE", price="9.99", stock=1000)
    make_product(shop.store, "MUG", price="4.50", stock=1000)
    rel.start_worker()
    orders = {f"pg-{uuid.uuid4()}": order_body(("TEE", 1), ("MUG", 2)) for _ in range(300)}

    stop, kills = threading.Event(), []

    def killer() -> None:
        try:
            while not stop.is_set():
                kills.append(terminate_web_backends(rel.db_name))
                time.sleep(0.2)
        finally:
            connection.close()

    started = time.monotonic()
    first: dict[str, requests.Response] = {}
    k = threading.Thread(target=killer)
    k.start()
    try:
        with ThreadPoolExecutor(6) as pool:
            answers = pool.map(lambda key: shop.api.post_order(orders[key], key=key), orders)
            for key, r in zip(orders, answers, strict=True):
                first[key] = r
    finally:
        stop.set()
        k.join(30)
    chaos = time.monotonic() - started

    statuses = Counter(r.status_code for r in first.values())
    assert set(statuses) <= {202, 500, 503}, statuses
    bad = [
        (r.status_code, problem)
        for r in first.values()
        if r.status_code != 202 and (problem := error_shape_problems(r))
    ]
    assert not bad, bad[:5]
    assert sum(kills) > 0 and statuses[202] > 0, (kills, statuses)

    # the clients retry what failed, with the same key: a replay or exactly one new order
    final: dict[str, requests.Response] = {k: r for k, r in first.items() if r.status_code == 202}
    for key in set(orders) - set(final):
        for _ in range(5):
            r = shop.api.post_order(orders[key], key=key)
            if r.status_code == 202:
                final[key] = r
                break
            time.sleep(0.3)
    assert len(final) == len(orders), f"{len(orders) - len(final)} keys never got a 202 after the chaos"

    ids = {key: r.json()["id"] for key, r in final.items()}
    assert len(set(ids.values())) == len(orders)
    records = dict(IdempotencyRecord.all_stores.filter(store=shop.store).values_list("key", "order_id"))
    assert {k: str(v) for k, v in records.items()} == ids
    assert Order.all_stores.filter(store=shop.store).count() == len(orders)
    # never half-written: every order has its lines, its two reservation rows and its order.created
    for order_id in ids.values():
        lines = sorted(OrderItem.all_stores.filter(order_id=order_id).values_list("sku", "quantity"))
        assert lines == [("MUG", 2), ("TEE", 1)], (order_id, lines)
        reserved = sorted(
            StockMovement.all_stores.filter(order_id=order_id, kind="reserve").values_list(
                "product__sku", "quantity"
            )
        )
        assert reserved == [("MUG", 2), ("TEE", 1)], (order_id, reserved)
        created = Event.all_stores.filter(order_id=order_id, topic="order.created").count()
        assert created == 1, (order_id, created)

    wait_settled(shop.store, 120)
    states = assert_invariants(shop.store, gateway)
    assert set(states) <= PAID_OR_LATER | FINAL, states
    report(
        "postgres_drops",
        seconds=round(chaos, 1),
        backends_terminated=sum(kills),
        first_answers=dict(statuses),
        replayed_on_retry=sum(
            1
            for k, r in final.items()
            if first[k].status_code != 202 and r.headers.get("Idempotent-Replayed") == "true"
        ),
        states=states,
    )
