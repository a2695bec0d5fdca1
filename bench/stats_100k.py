"""Seed a store with 100k orders (bulk_create) and time `GET /api/v1/dashboard/stats`'s selector.

Prints the figures; never a test. Run against a database you can throw away:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/of_bench .venv/bin/python bench/stats_100k.py

Options: --orders N (default 100000), --store SLUG (default bench-stats), --runs N (default 5),
--keep (reuse an already seeded store instead of reseeding).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orderflow.settings")
from bench.common import SECRETS  # noqa: E402

for _name, _value in SECRETS.items():  # with DEBUG off the settings refuse to start without them
    os.environ.setdefault(_name, _value)

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from dashboard import selectors  # noqa: E402
from inventory.models import Product, StockLevel  # noqa: E402
from orderflow.core.tenancy import Store  # noqa: E402
from orders.models import Order  # noqa: E402

# (status, payment_status, fulfillment_status, weight)
SHAPES = [
    ("delivered", "succeeded", "delivered", 30),
    ("shipped", "succeeded", "shipped", 15),
    ("paid", "succeeded", "unfulfilled", 10),
    ("fulfilling", "succeeded", "picking", 5),
    ("payment_processing", "retrying", "unfulfilled", 2),
    ("payment_failed", "failed", "unfulfilled", 6),
    ("pending", "pending", "unfulfilled", 5),
    ("cancelled", "refunded", "cancelled", 4),
    ("rejected", "pending", "unfulfilled", 2),
    ("fraud_review", "pending", "unfulfilled", 1),
]


def seed(store: Store, n: int) -> None:
    Order.all_stores.filter(store=store).delete()
    rng = random.Random(7)
    now = timezone.now()
    weights = [s[3] for s in SHAPES]
    batch: list[tuple[Order, object]] = []
    for i in range(n):
        status, pay, ful, _ = rng.choices(SHAPES, weights)[0]
        # 60% in the last 7 days, the rest over the previous 90
        age = timedelta(
            seconds=rng.uniform(0, 7 * 86400) if rng.random() < 0.6 else rng.uniform(7, 97) * 86400
        )
        created = now - age
        paid_at = (
            created + timedelta(seconds=rng.uniform(1, 30)) if pay in ("succeeded", "refunded") else None
        )
        shipped_at = (
            paid_at + timedelta(seconds=rng.uniform(600, 86400))
            if paid_at and status in ("shipped", "delivered")
            else None
        )
        total = Decimal(rng.randint(500, 20000)) / 100
        batch.append((
            Order(
                id=uuid.uuid4(), store=store, number=i + 1, status=status, payment_status=pay,
                fulfillment_status=ful, customer_email=f"c{i}@example.com", customer_name="Bench",
                shipping_line1="1 Bench St", shipping_city="Berlin", shipping_postal_code="10115",
                shipping_country="DE", currency="EUR", subtotal=total, total=total,
                paid_at=paid_at, shipped_at=shipped_at, tracking_token=uuid.uuid4().hex,
            ), created,
        ))  # fmt: skip
        if len(batch) == 5000:
            _flush(batch)
    _flush(batch)
    with connection.cursor() as cur:
        cur.execute("ANALYZE orders_order")


def _flush(batch: list[tuple[Order, object]]) -> None:
    """bulk_create stamps auto_now_add fields with now, so write created_at with one UPDATE FROM VALUES."""
    if not batch:
        return
    created = {o.id: t for o, t in batch}
    Order.all_stores.bulk_create([o for o, _ in batch])
    with connection.cursor() as cur:
        values = ",".join(["(%s::uuid, %s::timestamptz)"] * len(created))
        params: list = []
        for k, v in created.items():
            params += [str(k), v]
        cur.execute(
            f"UPDATE orders_order o SET created_at = v.t FROM (VALUES {values}) AS v(id, t) "
            "WHERE o.id = v.id",
            params,
        )
    batch.clear()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=100_000)
    ap.add_argument("--store", default="bench-stats")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    store, _ = Store.objects.get_or_create(slug=args.store, defaults={"name": "Bench stats"})
    have = Order.all_stores.filter(store=store).count()
    if not (args.keep and have >= args.orders):
        t0 = time.perf_counter()
        seed(store, args.orders)
        print(f"seeded {args.orders} orders in {time.perf_counter() - t0:.1f}s")
    if not Product.all_stores.filter(store=store).exists():
        for i in range(200):
            p = Product.all_stores.create(
                store=store, sku=f"B-{i:04d}", name=f"Bench {i}", price=Decimal("9.99")
            )
            StockLevel.all_stores.create(store=store, product=p, on_hand=i % 40, low_stock_threshold=10)

    selectors.stats(store)  # warm connection and caches
    timings = []
    for _ in range(args.runs):
        with CaptureQueriesContext(connection) as ctx:
            t0 = time.perf_counter()
            result = selectors.stats(store)
            timings.append((time.perf_counter() - t0) * 1000)
    total = sum(result["orders_by_status"].values())
    print(f"orders in store: {total}; queries per stats call: {len(ctx.captured_queries)}")
    print(
        f"stats over {args.runs} runs: median {statistics.median(timings):.1f} ms, "
        f"min {min(timings):.1f} ms, max {max(timings):.1f} ms"
    )
    for q in ctx.captured_queries:
        print(f"  {float(q['time']) * 1000:7.1f} ms  {q['sql'][:110]}")


if __name__ == "__main__":
    main()
