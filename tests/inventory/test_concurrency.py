"""Reservations under real concurrency on PostgreSQL: real threads, each with its own connection,
each reservation in its own transaction (as an order's would be)."""

import threading
import time
import uuid

import pytest
from django.db import OperationalError, connection, transaction

from inventory import services
from inventory.models import StockLevel, StockMovement
from inventory.selectors import ledger_mismatches
from orderflow.core.errors import InsufficientStock
from tests.factories import make_product

pytestmark = pytest.mark.django_db(transaction=True)


def run_threads(n: int, work) -> list:
    """Run work(i) in n threads released together; return each thread's outcome (or exception)."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def target(i: int):
        try:
            for attempt in range(50):  # a busy shared server may briefly refuse new connections
                try:
                    connection.ensure_connection()
                    break
                except OperationalError:
                    time.sleep(0.05 * (attempt + 1))
            barrier.wait(timeout=60)
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def reserve(store, lines) -> str:
    try:
        with transaction.atomic():
            services.reserve_stock(store=store, lines=lines, order_id=uuid.uuid4())
        return "ok"
    except InsufficientStock as exc:
        return exc.code


def test_fifty_threads_reserving_the_last_ten_units_never_oversell(store):
    product = make_product(store, "LAST", stock=10)
    results = run_threads(50, lambda i: reserve(store, [(product.pk, 1)]))
    assert results.count("ok") == 10
    assert results.count("insufficient_stock") == 40
    level = StockLevel.all_stores.get(product=product)
    assert (level.on_hand, level.reserved) == (10, 10)
    assert StockMovement.all_stores.filter(product=product, kind="reserve").count() == 10
    assert ledger_mismatches() == []


def test_uneven_quantities_against_scarce_stock_never_oversell(store):
    product = make_product(store, "SCARCE", stock=25)
    results = run_threads(30, lambda i: reserve(store, [(product.pk, 1 + i % 4)]))
    assert all(r in ("ok", "insufficient_stock") for r in results), results
    level = StockLevel.all_stores.get(product=product)
    reserved = sum(
        StockMovement.all_stores.filter(product=product, kind="reserve").values_list("quantity", flat=True)
    )
    assert level.reserved == reserved <= 25
    assert ledger_mismatches() == []


def test_opposite_order_two_sku_reservations_never_deadlock(store):
    a = make_product(store, "A", stock=10_000)
    b = make_product(store, "B", stock=10_000)
    rounds = 25

    def work(i: int):
        lines = [(a.pk, 1), (b.pk, 1)] if i % 2 else [(b.pk, 1), (a.pk, 1)]
        outcomes = []
        for _ in range(rounds):
            order_id = uuid.uuid4()
            with transaction.atomic():
                services.reserve_stock(store=store, lines=lines, order_id=order_id)
            # and the way back, in the opposite order too
            with transaction.atomic():
                if i % 3 == 0:
                    services.commit_stock(store=store, order_id=order_id)
                else:
                    services.release_stock(store=store, order_id=order_id)
            outcomes.append("ok")
        return outcomes

    results = run_threads(10, work)
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == []
    assert all(r == ["ok"] * rounds for r in results)
    assert StockMovement.all_stores.filter(kind="reserve").count() == 10 * rounds * 2
    assert StockLevel.all_stores.filter(reserved=0).count() == 2
    assert ledger_mismatches() == []


def test_concurrent_release_and_commit_of_one_order_move_its_stock_once(store):
    product = make_product(store, "ONE", stock=10)
    order_id = uuid.uuid4()
    services.reserve_stock(store=store, lines=[(product.pk, 4)], order_id=order_id)

    def work(i: int):
        if i % 2:
            return services.release_stock(store=store, order_id=order_id)
        return services.commit_stock(store=store, order_id=order_id)

    results = run_threads(8, work)
    assert sum(r for r in results if isinstance(r, int)) == 4, results
    level = StockLevel.all_stores.get(product=product)
    assert level.reserved == 0 and level.on_hand in (6, 10)
    assert ledger_mismatches() == []


def test_a_refused_reservation_outside_any_transaction_keeps_nothing(store):
    a = make_product(store, "A", stock=5)
    b = make_product(store, "B", stock=0)
    with pytest.raises(InsufficientStock):
        services.reserve_stock(store=store, lines=[(a.pk, 1), (b.pk, 1)], order_id=uuid.uuid4())
    assert StockLevel.all_stores.get(product=a).reserved == 0


def test_caller_catching_the_refusal_outside_its_atomic_block_can_carry_on(store):
    a = make_product(store, "A", stock=5)
    b = make_product(store, "B", stock=0)
    with transaction.atomic():
        try:
            with transaction.atomic():  # the order's own block (a savepoint inside the request's)
                services.reserve_stock(store=store, lines=[(a.pk, 1), (b.pk, 1)], order_id=uuid.uuid4())
        except InsufficientStock:
            pass
        services.restock(store=store, sku="B", quantity=1, actor="ops")
    assert StockLevel.all_stores.get(product=a).reserved == 0
    assert StockLevel.all_stores.get(product=b).on_hand == 1
