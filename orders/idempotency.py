"""The idempotency layer of `POST /api/v1/orders` (Stripe's semantics, the IETF draft's codes).

The first request claims `(store, key)` with one `INSERT ... ON CONFLICT DO NOTHING` inside the
order's transaction. A concurrent twin's INSERT waits on the unique index until the first
transaction ends: if it committed, the twin finds the finished record and replays it; if it rolled
back (validation, stock), the twin goes ahead as if it were first. The record is marked done with
the exact response bytes before COMMIT, so a record is never visible half-written; a record that
is visible and still in flight (a future code path that commits early) answers 409
`idempotency_key_in_use`. A rejected request rolls the record back with everything else, so the
corrected retry with the same key goes through.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import F
from django.utils import timezone

from orderflow.core import vault
from orderflow.core.errors import Conflict, DomainError
from orderflow.core.tenancy import Store

from .cards import card_brand, digits_only
from .models import IdempotencyRecord

MAX_KEY_LENGTH = 255


class IdempotencyKeyRequired(DomainError):
    code, status, message = "idempotency_key_required", 400, "Send an Idempotency-Key header."


class IdempotencyKeyInvalid(DomainError):
    code, status, message = (
        "idempotency_key_invalid",
        400,
        "The Idempotency-Key must be 1–255 printable ASCII characters.",
    )


class IdempotencyKeyReused(DomainError):
    code, status, message = (
        "idempotency_key_reused",
        422,
        "This Idempotency-Key was already used with a different request body.",
    )


class IdempotencyKeyInUse(Conflict):
    code, message = (
        "idempotency_key_in_use",
        "A request with this Idempotency-Key is still being processed; retry shortly.",
    )


def parse_key(raw: str | None) -> str:
    """The header's value, or 400: 1–255 printable ASCII characters (space to tilde)."""
    if raw is None or raw == "":
        raise IdempotencyKeyRequired()
    if len(raw) > MAX_KEY_LENGTH or any(not (" " <= ch <= "~") for ch in raw):
        raise IdempotencyKeyInvalid()
    return raw


FINGERPRINT_KEY_PURPOSE = "orderflow.idempotency-fingerprint"


def fingerprint(body: Any) -> str:
    """Keyed HMAC-SHA256 of the parsed body as canonical JSON (sorted keys, no whitespace), with
    the card reduced to what the order keeps (brand and last four): two bodies that differ only
    in key order or spacing are the same request. The one fingerprint of every intake path (the
    fast path and the serializer's, the legacy form, the dashboard, the seed).

    Why keyed and reduced: the record is kept for days; a plain hash of a body holding the card
    would give the number and CVC back to a short brute force over what the order row shows.
    The key is `IDEMPOTENCY_FINGERPRINT_KEY`, else one derived from SECRET_KEY for this purpose;
    changing it makes replays of keys used before the change answer 422, like a different body.

    The trade-off: a request that reuses a key with the same everything and a card differing only
    in the digits, expiry or CVC the order does not keep is taken as the same request and gets the
    first response. That is the right answer for a retrying client (the order was placed with the
    first card); a client that really meant another card has reused its key."""
    canonical = json.dumps(
        _card_reduced(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hmac.new(_fingerprint_key(), canonical.encode(), hashlib.sha256).hexdigest()


def _fingerprint_key() -> bytes:
    configured = settings.IDEMPOTENCY_FINGERPRINT_KEY
    return configured.encode() if configured else vault.derived_key(FINGERPRINT_KEY_PURPOSE)


def _card_reduced(body: Any) -> Any:
    """The body with `payment` replaced by the brand and last four of its card number, whatever
    shape it came in (the fingerprint is taken before validation): nothing else of it counts."""
    if not isinstance(body, dict) or "payment" not in body:
        return body
    payment = body["payment"]
    number = payment.get("card_number") if isinstance(payment, dict) else None
    if isinstance(number, int) and not isinstance(number, bool):
        number = str(number)
    if isinstance(number, str):
        digits = digits_only(number)
        brand = card_brand(digits) if digits.isascii() and digits.isdigit() else ""
        kept = {"brand": brand, "last4": digits[-4:]}
    else:
        kept = {"card": type(number).__name__ if isinstance(payment, dict) else type(payment).__name__}
    return {**body, "payment": kept}


@dataclass
class StoredResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    replayed: bool = False


def claim(*, store: Store, key: str, request_fingerprint: str) -> int | None:
    """Insert the in-flight record; its id, or None when the key already has a record.

    Must run inside the caller's transaction (the claim lives and dies with the order)."""
    meta = IdempotencyRecord._meta
    qn = connection.ops.quote_name
    f = meta.get_field
    now = timezone.now()
    columns = ["store_id", "key", "fingerprint", "state", "response_headers", "replays", "created_at"]
    values = [
        store.pk,
        key,
        request_fingerprint,
        IdempotencyRecord.State.IN_FLIGHT.value,
        f("response_headers").get_db_prep_save({}, connection),
        0,
        f("created_at").get_db_prep_save(now, connection),
    ]
    sql = (
        f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(c) for c in columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({qn('store_id')}, {qn('key')}) DO NOTHING RETURNING {qn('id')}"
    )
    with connection.cursor() as cur:
        cur.execute(sql, values)
        row = cur.fetchone()
    return row[0] if row else None


def existing_response(*, store: Store, key: str, request_fingerprint: str) -> StoredResponse | None:
    """What to answer when the key is taken: the stored response (a replay, counted), 422 for a
    different body, 409 while in flight. None if the record vanished meanwhile (purged).

    A record with no fingerprint was written before fingerprints were keyed: migration 0005 blanked
    the plain hashes (they gave the card back), so such a key replays whatever the body — an
    in-flight retry across the deploy gets its order, not a 422 that could make the client place
    it again under a new key. They are gone after IDEMPOTENCY_KEY_TTL_HOURS."""
    record = (
        IdempotencyRecord.all_stores.filter(store=store, key=key)
        .only("id", "fingerprint", "state", "response_status", "response_body", "response_headers")
        .first()
    )
    if record is None:
        return None
    if record.fingerprint and record.fingerprint != request_fingerprint:
        raise IdempotencyKeyReused()
    if record.state != IdempotencyRecord.State.DONE:
        raise IdempotencyKeyInUse()
    IdempotencyRecord.all_stores.filter(pk=record.pk).update(
        replays=F("replays") + 1, last_replayed_at=timezone.now()
    )
    return StoredResponse(
        status=record.response_status,
        body=bytes(record.response_body),
        headers=dict(record.response_headers),
        replayed=True,
    )


def complete(*, record_id: int, order_id: Any, response: StoredResponse) -> None:
    """Mark the claim done with the exact response, in the same transaction as the order."""
    values = {
        "state": IdempotencyRecord.State.DONE.value,
        "response_status": response.status,
        "response_body": response.body,
        "response_headers": response.headers,
        "order_id": order_id,
        "completed_at": timezone.now(),
    }
    IdempotencyRecord.all_stores.filter(pk=record_id).update(**values)
