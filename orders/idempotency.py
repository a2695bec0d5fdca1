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
import json
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import F
from django.utils import timezone

from orderflow.core import rows
from orderflow.core.errors import Conflict, DomainError
from orderflow.core.tenancy import Store

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


def fingerprint(body: Any) -> str:
    """sha256 of the parsed body as canonical JSON (sorted keys, no whitespace): two bodies that
    differ only in key order or spacing are the same request."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


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
    different body, 409 while in flight. None if the record vanished meanwhile (purged)."""
    record = (
        IdempotencyRecord.all_stores.filter(store=store, key=key)
        .only("id", "fingerprint", "state", "response_status", "response_body", "response_headers")
        .first()
    )
    if record is None:
        return None
    if record.fingerprint != request_fingerprint:
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
    rows.update_row(IdempotencyRecord, record_id, values)
