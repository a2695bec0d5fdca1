"""fraudGuard: a 0–100 risk score from named rules, each hit recorded with its contribution.

The rules are plain functions of `Facts` (gathered once from the database), so each can be tested
on its own and the order keeps exactly why it was held: `[{"rule", "points", "detail"}, ...]`.
Velocity is counted in the database rather than in Redis counters: a redelivered fraud task
recounts the same rows instead of bumping a counter twice, and the counts survive a Redis flush.

Per-store knobs live in `Store.settings` (editable in the admin as JSON): the platform's
`fraud_check_enabled`, `fraud_review_threshold`, `fraud_reject_threshold`, `fraud_amount_limit`,
`fraud_high_risk_countries`, plus the velocity and history limits in `DEFAULTS` below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Avg, Count, Value
from django.utils import timezone

from orderflow.core.tenancy import Store
from orders import selectors as order_selectors

APPROVE, REVIEW, REJECT = "approve", "review", "reject"

if TYPE_CHECKING:  # annotations only: orders are read and moved through orders' services
    from orders.models import Order

# Store.settings keys this module reads beyond the platform defaults, with their defaults.
DEFAULTS: dict[str, Any] = {
    "fraud_velocity_window_minutes": 60,
    "fraud_velocity_email_limit": 3,  # more orders than this per email in the window is a hit
    "fraud_velocity_card_limit": 5,  # ... per card (brand + last4)
    "fraud_velocity_ip_limit": 10,  # ... per client IP
    "fraud_cards_per_email_limit": 2,  # more distinct cards than this for one email (24 h) is a hit
    "fraud_cards_window_hours": 24,
    "fraud_first_order_multiplier": 5,  # a first order above N× the store's average is a hit
    "fraud_first_order_min_history": 10,  # ... once the store has at least this many orders
}

POINTS: dict[str, int] = {
    "amount_over_limit": 40,
    "velocity_email": 30,
    "velocity_card": 30,
    "velocity_ip": 20,
    "high_risk_country": 50,
    "disposable_email": 30,
    "many_cards_for_email": 40,
    "first_order_far_above_average": 25,
}

# A small built-in list; a store that needs more blocks them with its own rules upstream.
DISPOSABLE_EMAIL_DOMAINS = frozenset(
    {
        "mailinator.com",
        "guerrillamail.com",
        "guerrillamail.net",
        "10minutemail.com",
        "tempmail.com",
        "temp-mail.org",
        "throwawaymail.com",
        "yopmail.com",
        "trashmail.com",
        "sharklasers.com",
        "getnada.com",
        "dispostable.com",
        "maildrop.cc",
        "fakeinbox.com",
    }
)


def store_setting(store: Store, name: str) -> Any:
    """The store's value, else the platform default (Store.DEFAULT_SETTINGS), else ours."""
    value = store.setting(name)
    return DEFAULTS.get(name) if value is None else value


@dataclass(frozen=True)
class Facts:
    """Everything the rules look at, for one order."""

    total: Decimal
    currency: str
    amount_limit: Decimal | None
    email: str
    shipping_country: str
    high_risk_countries: frozenset[str]
    window_minutes: int
    email_orders_in_window: int  # including this order
    email_limit: int
    card: str  # "visa ****4242", "" when unknown
    card_orders_in_window: int
    card_limit: int
    ip: str | None
    ip_orders_in_window: int
    ip_limit: int
    distinct_cards_for_email: int  # capped at cards_limit + 1, like the velocity counts
    cards_limit: int
    prior_orders_for_email: int
    store_average_total: Decimal | None
    store_order_count: int
    first_order_multiplier: Decimal
    first_order_min_history: int

    @property
    def email_domain(self) -> str:
        return self.email.rpartition("@")[2].lower()


@dataclass(frozen=True)
class Hit:
    rule: str
    points: int
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "points": self.points, "detail": self.detail}


def _hit(rule: str, detail: str) -> Hit:
    return Hit(rule, POINTS[rule], detail)


# ------------------------------------------------------------------------------------ rules


def amount_over_limit(f: Facts) -> Hit | None:
    if f.amount_limit is not None and f.total > f.amount_limit:
        return _hit("amount_over_limit", f"total {f.total} {f.currency} is over the limit {f.amount_limit}")
    return None


def velocity_email(f: Facts) -> Hit | None:
    if f.email_orders_in_window > f.email_limit:
        return _hit(
            "velocity_email",
            f"{f.email_orders_in_window} orders from this email in {f.window_minutes} min "
            f"(limit {f.email_limit})",
        )
    return None


def velocity_card(f: Facts) -> Hit | None:
    if f.card and f.card_orders_in_window > f.card_limit:
        return _hit(
            "velocity_card",
            f"{f.card_orders_in_window} orders with {f.card} in {f.window_minutes} min "
            f"(limit {f.card_limit})",
        )
    return None


def velocity_ip(f: Facts) -> Hit | None:
    if f.ip and f.ip_orders_in_window > f.ip_limit:
        return _hit(
            "velocity_ip",
            f"{f.ip_orders_in_window} orders from {f.ip} in {f.window_minutes} min (limit {f.ip_limit})",
        )
    return None


def high_risk_country(f: Facts) -> Hit | None:
    if f.shipping_country.upper() in f.high_risk_countries:
        return _hit("high_risk_country", f"shipping to {f.shipping_country.upper()}, a high-risk country")
    return None


def disposable_email(f: Facts) -> Hit | None:
    if f.email_domain in DISPOSABLE_EMAIL_DOMAINS:
        return _hit("disposable_email", f"{f.email_domain} is a disposable email domain")
    return None


def many_cards_for_email(f: Facts) -> Hit | None:
    if f.distinct_cards_for_email > f.cards_limit:
        return _hit(
            "many_cards_for_email",
            f"{f.distinct_cards_for_email} different cards used with this email (limit {f.cards_limit})",
        )
    return None


def first_order_far_above_average(f: Facts) -> Hit | None:
    if (
        f.prior_orders_for_email == 0
        and f.store_average_total
        and f.store_order_count >= f.first_order_min_history
        and f.total > f.store_average_total * f.first_order_multiplier
    ):
        average = f.store_average_total.quantize(Decimal("0.01"))
        return _hit(
            "first_order_far_above_average",
            f"first order of {f.total} is over {f.first_order_multiplier}× the store average {average}",
        )
    return None


RULES: list[Callable[[Facts], Hit | None]] = [
    amount_over_limit,
    velocity_email,
    velocity_card,
    velocity_ip,
    high_risk_country,
    disposable_email,
    many_cards_for_email,
    first_order_far_above_average,
]


@dataclass(frozen=True)
class Assessment:
    score: int
    decision: str
    hits: list[Hit] = field(default_factory=list)

    @property
    def rules(self) -> list[dict[str, Any]]:
        return [h.as_dict() for h in self.hits]


def decide(score: int, *, review_threshold: int, reject_threshold: int) -> str:
    if score >= reject_threshold:
        return REJECT
    if score >= review_threshold:
        return REVIEW
    return APPROVE


def evaluate(facts: Facts, *, review_threshold: int, reject_threshold: int) -> Assessment:
    """Run every rule; the score is the sum of the hits, capped at 100."""
    hits = [hit for rule in RULES if (hit := rule(facts)) is not None]
    score = min(100, sum(h.points for h in hits))
    return Assessment(
        score, decide(score, review_threshold=review_threshold, reject_threshold=reject_threshold), hits
    )


# ---------------------------------------------------------------------------------- facts


def _decimal_or_none(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    return Decimal(str(value))


CARD_COLUMNS = ("card_brand", "card_last4")


def _counts_upto(distinct: frozenset[str] = frozenset(), **capped: tuple[Any, int]) -> dict[str, int]:
    """Several COUNT(*)s that each stop at their cap, in one statement (a UNION ALL of the capped
    subqueries: at most the caps' sum of rows comes back): a velocity rule only asks "more than
    the limit?", and an uncapped count of every recent order from one busy IP grows with the
    store's traffic. `capped`: name → (queryset, cap); a None queryset counts 0. The parts named
    in `distinct` count different cards (CARD_COLUMNS) instead of orders. A database that cannot
    cap the parts of a compound query (SQLite) counts each part on its own, same answer."""
    parts = []
    for name, (qs, cap) in capped.items():
        if qs is None:
            continue
        part = qs.order_by().annotate(counted=Value(name)).values_list("counted", *CARD_COLUMNS)
        parts.append((part.distinct() if name in distinct else part)[:cap])
    counts = dict.fromkeys(capped, 0)
    if not connection.features.supports_slicing_ordering_in_compound:
        for part in parts:
            rows = list(part)
            if rows:
                counts[rows[0][0]] = len(rows)
        return counts
    if parts:
        for name, *_card in parts[0].union(*parts[1:], all=True):
            counts[name] += 1
    return counts


def _store_history(store: Store, order: Order, now) -> dict[str, Any]:
    """The store's average order total and order count over 30 days (the first-order rule's
    yardstick), cached per store and currency for FRAUD_HISTORY_CACHE_SECONDS: the aggregate reads
    every order of the month, so computed per fraud check it made each check slower as the store
    grew (20,000 orders in the soak: seconds per check). A minute-old average is as good a
    yardstick; 0 turns the cache off."""
    ttl = settings.FRAUD_HISTORY_CACHE_SECONDS
    key = f"fraud:history:{store.pk}:{order.currency}"
    if ttl > 0:
        try:
            cached = cache.get(key)
        except Exception:
            cached = None
        if cached is not None:
            return {"avg": _decimal_or_none(cached["avg"]), "n": cached["n"]}
    month = now - timedelta(days=30)
    history = (
        order_selectors.store_orders(store)
        .filter(currency=order.currency, created_at__gte=month)
        .exclude(pk=order.pk)
        .aggregate(avg=Avg("total"), n=Count("id"))
    )
    if ttl > 0:
        try:
            avg = history["avg"]
            cache.set(key, {"avg": str(avg) if avg is not None else None, "n": history["n"] or 0}, ttl)
        except Exception:
            pass
    return history


def gather_facts(order: Order) -> Facts:
    """Read what the rules need about this order and its neighbours (same store only). Every
    lookup is bounded: the velocity counts stop at limit + 1 and use indexes that lead with the
    store (order_store_email_ci, order_store_card, order_store_ip), the history is cached."""
    store = order.store
    now = timezone.now()
    window = int(store_setting(store, "fraud_velocity_window_minutes"))
    since = now - timedelta(minutes=window)
    orders = order_selectors.store_orders(store)
    recent = orders.filter(created_at__gte=since)
    email = order.customer_email
    same_email = orders.filter(customer_email__iexact=email)
    card = f"{order.card_brand} ****{order.card_last4}" if order.card_last4 else ""
    cards_since = now - timedelta(hours=int(store_setting(store, "fraud_cards_window_hours")))
    history = _store_history(store, order, now)
    email_limit = int(store_setting(store, "fraud_velocity_email_limit"))
    card_limit = int(store_setting(store, "fraud_velocity_card_limit"))
    ip_limit = int(store_setting(store, "fraud_velocity_ip_limit"))
    cards_limit = int(store_setting(store, "fraud_cards_per_email_limit"))
    same_card = recent.filter(card_brand=order.card_brand, card_last4=order.card_last4) if card else None
    same_ip = recent.filter(client_ip=order.client_ip) if order.client_ip else None
    counts = _counts_upto(
        distinct=frozenset({"cards"}),
        email=(recent.filter(customer_email__iexact=email), email_limit + 1),
        card=(same_card, card_limit + 1),
        ip=(same_ip, ip_limit + 1),
        prior=(same_email.exclude(pk=order.pk), 1),
        cards=(same_email.filter(created_at__gte=cards_since).exclude(card_last4=""), cards_limit + 1),
    )
    return Facts(
        total=order.total,
        currency=order.currency,
        amount_limit=_decimal_or_none(store_setting(store, "fraud_amount_limit")),
        email=email,
        shipping_country=order.shipping_country or "",
        high_risk_countries=frozenset(
            str(c).upper() for c in (store_setting(store, "fraud_high_risk_countries") or [])
        ),
        window_minutes=window,
        email_orders_in_window=counts["email"],
        email_limit=email_limit,
        card=card,
        card_orders_in_window=counts["card"],
        card_limit=card_limit,
        ip=order.client_ip,
        ip_orders_in_window=counts["ip"],
        ip_limit=ip_limit,
        distinct_cards_for_email=counts["cards"],
        cards_limit=cards_limit,
        prior_orders_for_email=counts["prior"],
        store_average_total=history["avg"],
        store_order_count=history["n"] or 0,
        first_order_multiplier=Decimal(str(store_setting(store, "fraud_first_order_multiplier"))),
        first_order_min_history=int(store_setting(store, "fraud_first_order_min_history")),
    )


def assess(order: Order) -> Assessment:
    """The order's assessment under its store's thresholds (score 0, approve, when disabled)."""
    store = order.store
    if not store_setting(store, "fraud_check_enabled"):
        return Assessment(0, APPROVE, [])
    return evaluate(
        gather_facts(order),
        review_threshold=int(store_setting(store, "fraud_review_threshold")),
        reject_threshold=int(store_setting(store, "fraud_reject_threshold")),
    )
