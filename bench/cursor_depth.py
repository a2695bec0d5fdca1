"""Time a page of `GET /api/v1/orders` at depth 0 / 10k / 100k: the cursor (keyset) page against
the same page by OFFSET. Prints the figures; never a test. Run against a database you can throw
away:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/of_bench .venv/bin/python bench/cursor_depth.py

Options: --orders N (default 200000; a depth beyond N is skipped), --limit N (default 50),
--runs N (default 5), --keep (reuse an already seeded store).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
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
from django.utils import timezone  # noqa: E402
from rest_framework.request import Request  # noqa: E402
from rest_framework.test import APIRequestFactory  # noqa: E402

from orderflow.core.pagination import CursorPagination  # noqa: E402
from orderflow.core.tenancy import Store  # noqa: E402
from orders import selectors  # noqa: E402
from orders.models import Order  # noqa: E402

DEPTHS = (0, 10_000, 100_000)


def seed(store: Store, n: int) -> None:
    Order.all_stores.filter(store=store).delete()
    now = timezone.now()
    for start in range(0, n, 5000):
        rows = [
            Order(
                store=store,
                number=i + 1,
                customer_email=f"c{i}@example.com",
                customer_name="Bench",
                shipping_line1="1 Main St",
                shipping_city="Berlin",
                shipping_postal_code="10115",
                shipping_country="DE",
                currency="EUR",
                subtotal=Decimal("10.00"),
                total=Decimal("10.00"),
            )
            for i in range(start, min(n, start + 5000))
        ]
        Order.all_stores.bulk_create(rows)
    # spread the clock: one order a second, back from now
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE orders_order SET created_at = %s - (number * interval '1 second') WHERE store_id = %s",
            [now, store.pk],
        )
        cur.execute("ANALYZE orders_order")


class _View:
    cursor_ordering = selectors.ORDER_LIST_ORDERING

    def __init__(self, store):
        self.store = store

    def get_cursor_queryset(self):
        return selectors.order_list(self.store)


def ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=200_000)
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    store, _ = Store.objects.get_or_create(slug="bench-cursor", defaults={"name": "Bench cursor"})
    if not args.keep or not Order.all_stores.filter(store=store).exists():
        t = time.perf_counter()
        seed(store, args.orders)
        print(f"seeded {args.orders} orders in {time.perf_counter() - t:.1f} s")
    factory = APIRequestFactory()
    print(f"page of {args.limit}, median of {args.runs} (ms):")
    print(f"{'depth':>8}  {'cursor':>8}  {'offset':>8}")
    for depth in DEPTHS:
        if depth >= args.orders:
            print(f"{depth:>8}  (fewer orders than that: skipped)")
            continue
        query = f"limit={args.limit}"
        if depth:
            cursor = selectors.order_list(store).values_list("pk", flat=True)[depth - 1]
            query += f"&starting_after={cursor}"

        def by_cursor(query=query):
            request = Request(factory.get(f"/api/v1/orders?{query}"))
            rows = CursorPagination().paginate_queryset(selectors.order_list(store), request, _View(store))
            assert len(rows) == args.limit

        def by_offset(depth=depth):
            rows = list(selectors.order_list(store)[depth : depth + args.limit])
            assert len(rows) == args.limit

        print(f"{depth:>8}  {ms(by_cursor, args.runs):>8.2f}  {ms(by_offset, args.runs):>8.2f}")


if __name__ == "__main__":
    main()
