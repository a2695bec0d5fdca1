"""`manage.py seed [--reset] [--orders N]` — demo data a new install can be explored with.

Two demo stores with realistic catalogues (a few products already low on stock), an operator
user per store (staff, with the operator role in that store: what they see and may do in the admin
and the dashboard follows from the role, orderflow/core/permissions.py) and one API key per store
(printed once, when it is created). Idempotent: a re-run adds only what is missing and leaves
existing stock, users and keys alone. `--reset` deletes the demo stores (and everything in them)
and their operators first. `--orders N` places N orders per store through the real order service,
as a checkout would.
"""

from __future__ import annotations

import os
import random
import sys
import uuid

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from inventory import selectors as inventory_selectors
from inventory import services as inventory_services
from inventory.demo import DEMO_STORES, DemoStore
from orderflow.core.errors import DomainError
from orderflow.core.tenancy import ApiKey, Store, StoreMembership, create_api_key, use_store
from orders.idempotency import fingerprint
from orders.services import place_order

SEED_KEY_NAME = "seed"
DEFAULT_OPERATOR_PASSWORD = "orderflow-demo"

FIRST_NAMES = ["Ada", "Grace", "Alan", "Margaret", "Linus", "Hedy", "Tim", "Barbara", "Ken", "Frances"]
LAST_NAMES = ["Lovelace", "Hopper", "Turing", "Hamilton", "Torvalds", "Lamarr", "Berners-Lee", "Liskov"]
CITIES = [
    ("Berlin", "10115", "DE"),
    ("Paris", "75001", "FR"),
    ("Amsterdam", "1012", "NL"),
    ("Wien", "1010", "AT"),
]


class ProgressBar:
    """A plain stdout bar: `label [#######.........]  12/34` (redrawn in place on a terminal)."""

    def __init__(self, stdout, label: str, total: int, width: int = 30):
        self.stdout, self.label, self.total, self.width = stdout, label, max(total, 1), width
        self.tty = getattr(sys.stdout, "isatty", lambda: False)()
        self.done = 0

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.tty or self.done >= self.total:
            filled = int(self.width * self.done / self.total)
            bar = "#" * filled + "." * (self.width - filled)
            end = "\n" if self.done >= self.total else ""
            self.stdout.write(f"\r  {self.label:<28} [{bar}] {self.done:>4}/{self.total}", ending=end)
            self.stdout.flush()


class Command(BaseCommand):
    help = "Load two demo stores with catalogues, operators and API keys (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="Delete the demo stores and start over.")
        parser.add_argument(
            "--orders", type=int, default=0, metavar="N", help="Also place N orders per store."
        )

    def handle(self, *args, **opts):
        if opts["orders"] < 0:
            opts["orders"] = 0
        if opts["reset"]:
            self.reset()
        password = os.environ.get("DEMO_OPERATOR_PASSWORD") or DEFAULT_OPERATOR_PASSWORD
        summary = []
        for demo in DEMO_STORES:
            store, created = self.store(demo)
            added = self.catalogue(store, demo)
            login = self.operator(store, password)
            key_line = self.api_key(store)
            placed = self.orders(store, opts["orders"]) if opts["orders"] else None
            summary.append((store, created, added, login, key_line, placed))
        self.print_summary(summary)

    # ---------------------------------------------------------------------------- steps

    def reset(self) -> None:
        slugs = [d.slug for d in DEMO_STORES]
        User = get_user_model()
        users = User.objects.filter(username__in=[f"{s}-operator" for s in slugs])
        n_users = users.count()
        users.delete()
        for store in Store.objects.filter(slug__in=slugs):
            with transaction.atomic():
                store.delete()
        self.stdout.write(f"reset: demo stores {', '.join(slugs)} and {n_users} operator(s) deleted")

    def store(self, demo: DemoStore) -> tuple[Store, bool]:
        store, created = Store.objects.get_or_create(
            slug=demo.slug, defaults={"name": demo.name, "currency": demo.currency}
        )
        self.stdout.write(f"store {store.slug}: {'created' if created else 'exists'} ({store.name})")
        return store, created

    def catalogue(self, store: Store, demo: DemoStore) -> int:
        existing = set(inventory_selectors.products(store).values_list("sku", flat=True))
        missing = [p for p in demo.products if p.sku not in existing]
        if not missing:
            self.stdout.write(f"  catalogue: all {len(demo.products)} products present")
            return 0
        bar = ProgressBar(self.stdout, f"catalogue ({len(missing)} new)", len(missing))
        for p in missing:
            inventory_services.create_product(
                store=store,
                sku=p.sku,
                name=p.name,
                price=p.price,
                currency=store.currency,
                description=p.description,
                initial_stock=p.stock,
                low_stock_threshold=p.threshold,
                lead_time_days=p.lead_time_days,
                actor="seed",
            )
            bar.advance()
        return len(missing)

    def operator(self, store: Store, password: str) -> str:
        """A staff user with the operator role in `store`: no Django model permission is given, the
        role alone decides what the admin shows them (the store's rows) and lets them do."""
        User = get_user_model()
        username = f"{store.slug}-operator"
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User.objects.create_user(
                username=username, email=f"{username}@example.com", password=password, is_staff=True
            )
            shown = f"{username} / {password}"
            self.stdout.write(f"  operator: created {username}")
        else:
            shown = f"{username} / (unchanged: password set when it was created)"
            self.stdout.write(f"  operator: {username} exists")
        StoreMembership.objects.get_or_create(
            store=store, user=user, defaults={"role": StoreMembership.Role.OPERATOR}
        )
        return shown

    def api_key(self, store: Store) -> str:
        if ApiKey.objects.filter(store=store, name=SEED_KEY_NAME, revoked_at__isnull=True).exists():
            return f"exists (shown only when created); for a new one: manage.py create_api_key {store.slug}"
        _, raw = create_api_key(store=store, name=SEED_KEY_NAME)
        self.stdout.write(f"  api key: created (shown once): {raw}")
        return f"{raw}   <- copy it now, it is not shown again"

    def orders(self, store: Store, n: int) -> str:
        """N orders through the real order service (stock reserved, events emitted)."""
        rng = random.Random()
        skus = list(
            inventory_selectors.products(store, active=True)
            .filter(stock__on_hand__gt=0)
            .values_list("sku", flat=True)
        )
        placed = refused = 0
        bar = ProgressBar(self.stdout, f"orders ({n})", n)
        with use_store(store):
            for _ in range(n):
                payload = self.order_payload(rng, skus, store.currency)
                try:
                    place_order(
                        store=store,
                        payload=payload,
                        idempotency_key=f"seed-{uuid.uuid4()}",
                        request_fingerprint=fingerprint(payload),
                        actor="seed",
                    )
                    placed += 1
                except DomainError:  # out of stock for this basket: a real shop refuses it too
                    refused += 1
                bar.advance()
        return f"{placed} placed" + (f", {refused} refused (stock)" if refused else "")

    @staticmethod
    def order_payload(rng: random.Random, skus: list[str], currency: str) -> dict:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        city, postal, country = rng.choice(CITIES)
        lines = rng.sample(skus, k=min(len(skus), rng.randint(1, 3)))
        email = f"{first}.{last}.{rng.randint(1, 9999)}@example.com".lower()
        return {
            "customer": {"email": email, "name": f"{first} {last}"},
            "items": [{"sku": sku, "quantity": rng.randint(1, 2)} for sku in lines],
            "shipping_address": {
                "line1": f"{rng.randint(1, 200)} Demo Street",
                "city": city,
                "postal_code": postal,
                "country": country,
            },
            "payment": {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"},
            "currency": currency,
            "metadata": {"source": "seed"},
        }

    # -------------------------------------------------------------------------- summary

    def print_summary(self, summary) -> None:
        w = self.stdout.write
        w("")
        w("=" * 78)
        w("OrderFlow demo data")
        w("=" * 78)
        for store, created, added, login, key_line, placed in summary:
            products = inventory_selectors.products(store).count()
            low = inventory_selectors.low_stock_count(store)
            w(f"Store     {store.slug}  ({store.name}, {store.currency}){'  [new]' if created else ''}")
            w(f"  header  X-Store-ID: {store.slug}")
            w(f"  catalog {products} products ({added} added now), {low} at or under their threshold")
            w(f"  login   {login}")
            w(f"  API key {key_line}")
            if placed is not None:
                w(f"  orders  {placed}")
            w("")
        w("Operators log in at /admin/ and /dashboard/. Re-running seed changes nothing that exists.")
        w("=" * 78)
