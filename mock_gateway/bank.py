"""The simulated bank: ledger, idempotency, test cards and fault injection.

Kept free of HTTP so the rules can be unit-tested directly; ``server.py`` only turns
requests into calls on :class:`Bank` and :class:`Reply` objects into responses.

The rules mirror what a real acquirer does and what a payment client must cope with:

* a charge is created at most once per ``Idempotency-Key``; final outcomes (success,
  decline) are stored and replayed, transient faults are not, so a retry can succeed;
* concurrent requests with the same key are serialised by a per-key lock;
* when the bank is slow, the money moves *before* the slow answer, so a client that
  timed out must retry with the same key to learn what happened.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

CENT = Decimal("0.01")
MAX_LATENCY_MS = 600_000  # ten minutes: enough to outlast any client timeout
MAX_KEY_LENGTH = 255

# Only ASCII digits: ``\d`` would also accept other Unicode digits.
_AMOUNT_RE = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,2})?")
_CURRENCY_RE = re.compile(r"[A-Za-z]{3}")
_CARD_RE = re.compile(r"[0-9]{12,19}")
_AMOUNT_HINT = 'must be a positive decimal string with at most 2 decimals, e.g. "12.50"'

CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000002"
CARD_INSUFFICIENT_FUNDS = "4000000000009995"
CARD_PROCESSING_ERROR = "4000000000000119"
CARD_SLOW = "4000000000000259"

_DECLINES: dict[str, tuple[str, str]] = {
    CARD_DECLINED: ("generic_decline", "Your card was declined."),
    CARD_INSUFFICIENT_FUNDS: ("insufficient_funds", "Your card has insufficient funds."),
}

# Outcomes that are the bank's final word and therefore replayed for the same key.
_FINAL_CHARGE_STATUSES = frozenset({201, 402})
_FINAL_REFUND_STATUSES = frozenset({201})


@dataclass(frozen=True)
class Reply:
    """An HTTP-agnostic answer: status code plus JSON-serialisable body."""

    status: int
    body: dict[str, Any]


def error(status: int, code: str, message: str, **extra: Any) -> Reply:
    """Build the gateway's uniform ``{"error": {...}}`` reply."""
    return Reply(status, {"error": {"code": code, "message": message, **extra}})


def invalid(fields: dict[str, str], message: str = "Invalid request.") -> Reply:
    return error(400, "invalid_request", message, fields=fields)


def money(value: Decimal) -> str:
    """Render an amount the way the API always does: a string with two decimals."""
    return str(value.quantize(CENT))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_amount(value: Any) -> Decimal | None:
    """A positive decimal *string* with at most two decimals, else ``None``."""
    if not isinstance(value, str) or not _AMOUNT_RE.fullmatch(value):
        return None
    amount = Decimal(value)
    return amount if amount > 0 else None


@dataclass
class Charge:
    id: str
    idempotency_key: str
    amount: Decimal
    currency: str
    last4: str
    description: str
    metadata: dict[str, Any]
    created_at: str
    refunded: Decimal = Decimal("0")

    @property
    def status(self) -> str:
        if self.refunded <= 0:
            return "succeeded"
        return "refunded" if self.refunded >= self.amount else "partially_refunded"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "amount": money(self.amount),
            "currency": self.currency,
            "last4": self.last4,
            "description": self.description,
            "metadata": json.loads(json.dumps(self.metadata)),  # detached copy
            "idempotency_key": self.idempotency_key,
            "refunded_amount": money(self.refunded),
            "created_at": self.created_at,
        }


@dataclass
class Refund:
    id: str
    charge: str
    amount: Decimal
    idempotency_key: str | None
    created_at: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "charge": self.charge,
            "amount": money(self.amount),
            "status": "succeeded",
            "idempotency_key": self.idempotency_key,
            "created_at": self.created_at,
        }


@dataclass
class Control:
    """Fault-injection knobs, changed at runtime through ``POST /__control``."""

    failure_rate: float = 0.0
    latency_ms: int = 0
    outage: bool = False
    seed: int | None = None
    decline_next: int = 0  # the next N fresh charges are declined (generic_decline), whatever the card


@dataclass(frozen=True)
class ChargeRequest:
    amount: Decimal
    currency: str
    card_number: str
    description: str
    metadata: dict[str, Any]
    fingerprint: str


@dataclass(frozen=True)
class RefundRequest:
    charge: str
    amount: Decimal | None
    fingerprint: str


@dataclass(frozen=True)
class _Stored:
    fingerprint: str
    reply: Reply


def _fingerprint(data: dict[str, Any]) -> str:
    """Hash of the normalised request, so "12.5" and "12.50" count as the same body."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check_key(key: str | None, *, required: bool, errors: dict[str, str]) -> None:
    if key is None or key == "":
        if required:
            errors["Idempotency-Key"] = "header is required"
    elif len(key) > MAX_KEY_LENGTH:
        errors["Idempotency-Key"] = f"must be at most {MAX_KEY_LENGTH} characters"


def validate_charge(payload: Any, key: str | None) -> tuple[ChargeRequest | None, dict[str, str]]:
    """Validate a charge body; returns the normalised request or the field errors."""
    errors: dict[str, str] = {}
    _check_key(key, required=True, errors=errors)
    if not isinstance(payload, dict):
        errors["body"] = "must be a JSON object"
        return None, errors
    amount = _parse_amount(payload.get("amount"))
    if amount is None:
        errors["amount"] = _AMOUNT_HINT
    currency = payload.get("currency")
    if not isinstance(currency, str) or not _CURRENCY_RE.fullmatch(currency):
        errors["currency"] = 'must be a 3-letter ISO 4217 code, e.g. "EUR"'
    card = payload.get("card_number")
    if not isinstance(card, str) or not _CARD_RE.fullmatch(card):
        errors["card_number"] = "must be a string of 12 to 19 digits"
    description = payload.get("description", "")
    if description is None:
        description = ""
    if not isinstance(description, str):
        errors["description"] = "must be a string"
    metadata = payload.get("metadata", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        errors["metadata"] = "must be a JSON object"
    if errors:
        return None, errors
    assert amount is not None and isinstance(currency, str) and isinstance(card, str)
    normalised = {
        "amount": money(amount),
        "currency": currency.upper(),
        "card_number": card,
        "description": description,
        "metadata": metadata,
    }
    return (
        ChargeRequest(
            amount=amount,
            currency=currency.upper(),
            card_number=card,
            description=description,
            metadata=metadata,
            fingerprint=_fingerprint(normalised),
        ),
        {},
    )


def validate_refund(payload: Any, key: str | None) -> tuple[RefundRequest | None, dict[str, str]]:
    errors: dict[str, str] = {}
    _check_key(key, required=False, errors=errors)
    if not isinstance(payload, dict):
        errors["body"] = "must be a JSON object"
        return None, errors
    charge = payload.get("charge")
    if not isinstance(charge, str) or not charge:
        errors["charge"] = "must be a charge id string"
    raw_amount = payload.get("amount")
    amount = None if raw_amount is None else _parse_amount(raw_amount)
    if raw_amount is not None and amount is None:
        errors["amount"] = _AMOUNT_HINT
    if errors:
        return None, errors
    assert isinstance(charge, str)
    normalised = {"charge": charge, "amount": None if amount is None else money(amount)}
    return RefundRequest(charge=charge, amount=amount, fingerprint=_fingerprint(normalised)), {}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Bank:
    """In-memory bank shared by all request threads.

    ``self._lock`` guards every piece of shared state and is only held for quick
    bookkeeping, never while sleeping. Per-idempotency-key locks are held for the
    whole processing of a fresh request (sleeps included) so concurrent twins wait
    for the first one and replay its result instead of charging twice.
    """

    def __init__(
        self,
        *,
        seed: int | None = None,
        slow_ms: int = 2000,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._lock = threading.Lock()
        self._default_seed = seed
        self._control = Control(seed=seed)
        self._rng = random.Random(seed)
        self._slow_ms = slow_ms
        self._sleep = sleep
        self._charges: dict[str, Charge] = {}
        self._refunds: dict[str, Refund] = {}
        self._replies: dict[tuple[str, str], _Stored] = {}
        self._key_locks: dict[tuple[str, str], threading.Lock] = {}
        self._in_flight = 0  # money-moving calls (POST /v1/*) being answered right now
        self._peak_in_flight = 0
        self._calls = 0

    # ------------------------------------------------------------ concurrency

    def call_started(self) -> None:
        with self._lock:
            self._in_flight += 1
            self._calls += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)

    def call_finished(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def stats(self) -> dict[str, Any]:
        """How hard clients pushed: POST /v1/* calls answered, in flight now, and the peak of
        concurrent ones since the last reset (a client's concurrency limit is checked with it)."""
        with self._lock:
            return {
                "calls": self._calls,
                "in_flight": self._in_flight,
                "peak_in_flight": self._peak_in_flight,
            }

    # ----------------------------------------------------------------- control

    def control(self) -> dict[str, Any]:
        with self._lock:
            return asdict(self._control)

    def update_control(self, payload: Any) -> Reply:
        """Validate everything first, then apply atomically (all or nothing)."""
        if not isinstance(payload, dict):
            return invalid({"body": "must be a JSON object"})
        errors: dict[str, str] = {}
        known = {"failure_rate", "latency_ms", "outage", "seed", "reset", "decline_next"}
        for name in payload.keys() - known:
            errors[name] = "unknown field"
        if "failure_rate" in payload:
            rate = payload["failure_rate"]
            if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 <= rate <= 1:
                errors["failure_rate"] = "must be a number between 0 and 1"
        if "latency_ms" in payload:
            latency = payload["latency_ms"]
            if not _is_int(latency) or not 0 <= latency <= MAX_LATENCY_MS:
                errors["latency_ms"] = f"must be an integer between 0 and {MAX_LATENCY_MS}"
        if "outage" in payload and not isinstance(payload["outage"], bool):
            errors["outage"] = "must be true or false"
        if "seed" in payload and payload["seed"] is not None and not _is_int(payload["seed"]):
            errors["seed"] = "must be an integer or null"
        declines = payload.get("decline_next", 0)
        if not _is_int(declines) or declines < 0:
            errors["decline_next"] = "must be an integer of at least 0"
        if "reset" in payload and not isinstance(payload["reset"], bool):
            errors["reset"] = "must be true or false"
        if errors:
            return invalid(errors, "Invalid control settings.")
        with self._lock:
            if payload.get("reset"):
                self._control = Control(seed=self._default_seed)
                self._rng = random.Random(self._default_seed)
                self._calls, self._peak_in_flight = 0, self._in_flight
            if "failure_rate" in payload:
                self._control.failure_rate = float(payload["failure_rate"])
            if "latency_ms" in payload:
                self._control.latency_ms = payload["latency_ms"]
            if "outage" in payload:
                self._control.outage = payload["outage"]
            if "decline_next" in payload:
                self._control.decline_next = payload["decline_next"]
            if "seed" in payload:
                self._control.seed = payload["seed"]
                self._rng = random.Random(payload["seed"])
            return Reply(200, asdict(self._control))

    def outage_reply(self) -> Reply | None:
        """The immediate 503 every ``/v1/*`` request gets during an outage, else None."""
        with self._lock:
            down = self._control.outage
        if down:
            return error(503, "gateway_unavailable", "The gateway is unavailable (simulated outage).")
        return None

    # ------------------------------------------------------------------ ledger

    def ledger(self, *, store: str | None = None, order_id: str | None = None) -> dict[str, Any]:
        """Real charges only (declines never moved money), optionally filtered by metadata."""
        with self._lock:
            charges = [
                c
                for c in self._charges.values()
                if (store is None or c.metadata.get("store") == store)
                and (order_id is None or c.metadata.get("order_id") == order_id)
            ]
            ids = {c.id for c in charges}
            refunds = [r.as_dict() for r in self._refunds.values() if r.charge in ids]
            per_charge: dict[str, list[dict[str, Any]]] = {}
            for refund in refunds:
                per_charge.setdefault(refund["charge"], []).append(refund)
            return {
                "charges": [{**c.as_dict(), "refunds": per_charge.get(c.id, [])} for c in charges],
                "refunds": refunds,
            }

    def reset_ledger(self) -> None:
        """Forget charges, refunds and stored idempotent replies (control is kept)."""
        with self._lock:
            self._charges.clear()
            self._refunds.clear()
            self._replies.clear()

    # ----------------------------------------------------------------- charges

    def create_charge(self, payload: Any, idempotency_key: str | None) -> Reply:
        if (down := self.outage_reply()) is not None:
            return down
        request, errors = validate_charge(payload, idempotency_key)
        if request is None:
            return self._with_latency(invalid(errors))
        assert idempotency_key is not None
        return self._once(
            "charge",
            idempotency_key,
            request.fingerprint,
            lambda: self._decide_charge(request, idempotency_key),
            _FINAL_CHARGE_STATUSES,
        )

    def get_charge(self, charge_id: str) -> Reply:
        if (down := self.outage_reply()) is not None:
            return down
        with self._lock:
            charge = self._charges.get(charge_id)
            reply = (
                Reply(200, charge.as_dict())
                if charge is not None
                else error(404, "charge_not_found", f"No such charge: {charge_id!r}.")
            )
        return self._with_latency(reply)

    def _decide_charge(self, request: ChargeRequest, key: str) -> tuple[Reply, float]:
        """Decide and book one fresh charge; returns the reply and any extra hold in seconds."""
        if (fault := self._draw_fault()) is not None:
            return fault, 0.0
        with self._lock:
            forced_decline = self._control.decline_next > 0
            if forced_decline:
                self._control.decline_next -= 1
        if forced_decline:
            decline_code, message = _DECLINES[CARD_DECLINED]
            return error(402, "card_declined", message, decline_code=decline_code), 0.0
        card = request.card_number
        if card == CARD_PROCESSING_ERROR:
            return error(500, "processing_error", "An error occurred while processing the card."), 0.0
        if card in _DECLINES:
            decline_code, message = _DECLINES[card]
            return error(402, "card_declined", message, decline_code=decline_code), 0.0
        charge = Charge(
            id=f"ch_{uuid.uuid4().hex}",
            idempotency_key=key,
            amount=request.amount,
            currency=request.currency,
            last4=card[-4:],
            description=request.description,
            metadata=json.loads(json.dumps(request.metadata)),
            created_at=_now(),
        )
        with self._lock:
            self._charges[charge.id] = charge
            body = charge.as_dict()
        hold = self._slow_ms / 1000 if card == CARD_SLOW else 0.0
        return Reply(201, body), hold

    # ----------------------------------------------------------------- refunds

    def create_refund(self, payload: Any, idempotency_key: str | None) -> Reply:
        if (down := self.outage_reply()) is not None:
            return down
        request, errors = validate_refund(payload, idempotency_key)
        if request is None:
            return self._with_latency(invalid(errors))
        key = idempotency_key or None
        if key is None:
            reply, _ = self._decide_refund(request, None)
            return self._with_latency(reply)
        return self._once(
            "refund",
            key,
            request.fingerprint,
            lambda: self._decide_refund(request, key),
            _FINAL_REFUND_STATUSES,
        )

    def _decide_refund(self, request: RefundRequest, key: str | None) -> tuple[Reply, float]:
        if (fault := self._draw_fault()) is not None:
            return fault, 0.0
        with self._lock:  # check and book atomically: concurrent refunds can't over-refund
            charge = self._charges.get(request.charge)
            if charge is None:
                return error(404, "charge_not_found", f"No such charge: {request.charge!r}."), 0.0
            remaining = charge.amount - charge.refunded
            amount = remaining if request.amount is None else request.amount
            totals = {
                "charge_amount": money(charge.amount),
                "refunded_amount": money(charge.refunded),
                "refundable_amount": money(remaining),
            }
            if remaining <= 0:
                return (
                    error(400, "amount_too_large", "The charge has already been fully refunded.", **totals),
                    0.0,
                )
            if amount > remaining:  # the sum over the charge: several partial refunds never exceed it
                return (
                    error(
                        400,
                        "amount_too_large",
                        f"Refund amount {money(amount)} exceeds the refundable {money(remaining)} "
                        f"({money(charge.refunded)} of {money(charge.amount)} already refunded).",
                        **totals,
                    ),
                    0.0,
                )
            refund = Refund(
                id=f"re_{uuid.uuid4().hex}",
                charge=charge.id,
                amount=amount,
                idempotency_key=key,
                created_at=_now(),
            )
            charge.refunded += amount
            self._refunds[refund.id] = refund
            return Reply(201, refund.as_dict()), 0.0

    # ---------------------------------------------------------------- plumbing

    def _once(
        self,
        scope: str,
        key: str,
        fingerprint: str,
        decide: Callable[[], tuple[Reply, float]],
        final_statuses: frozenset[int],
    ) -> Reply:
        """Run ``decide`` at most once per key until it gives a final answer; replay that."""
        slot = (scope, key)
        with self._key_lock(slot):
            with self._lock:
                stored = self._replies.get(slot)
            if stored is None:
                reply, hold = decide()
                if reply.status in final_statuses:
                    # Stored before any sleep: the bank has decided, only the answer is slow.
                    with self._lock:
                        self._replies[slot] = _Stored(fingerprint, reply)
                if hold:
                    self._sleep(hold)
                return self._with_latency(reply)
        if stored.fingerprint != fingerprint:
            return self._with_latency(
                error(
                    409,
                    "idempotency_key_reused",
                    "This Idempotency-Key was already used with a different request body.",
                )
            )
        return self._with_latency(stored.reply)

    def _key_lock(self, slot: tuple[str, str]) -> threading.Lock:
        with self._lock:
            lock = self._key_locks.get(slot)
            if lock is None:
                lock = self._key_locks[slot] = threading.Lock()
            return lock

    def _draw_fault(self) -> Reply | None:
        """With probability ``failure_rate`` a transient 503/500; draws come from the seeded RNG."""
        with self._lock:
            rate = self._control.failure_rate
            if rate <= 0 or self._rng.random() >= rate:
                return None
            unavailable = self._rng.random() < 0.5
        if unavailable:
            return error(503, "gateway_unavailable", "The gateway is temporarily unavailable, retry later.")
        return error(500, "internal_error", "An internal gateway error occurred, retry later.")

    def _with_latency(self, reply: Reply) -> Reply:
        with self._lock:
            latency_ms = self._control.latency_ms
        if latency_ms:
            self._sleep(latency_ms / 1000)
        return reply
