"""Outgoing webhooks: endpoints (services), fan-out of events into deliveries, one signed attempt.

Delivery is at-least-once: the same event may reach a receiver twice (a retry after a timeout
that actually landed, a redeliver), always with the same `X-OrderFlow-Delivery` id to dedupe on.
Every delivery is signed twice with the endpoint's one secret, so a receiver can verify it with
off-the-shelf code (docs/webhooks.md):
- as Stripe does it: `X-OrderFlow-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`
  (Stripe's own `stripe.WebhookSignature.verify_header` checks it);
- as Standard Webhooks does it: `webhook-id` (the delivery id), `webhook-timestamp` and
  `webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<raw body>")>`, whose key is the
  same secret's UTF-8 bytes — in the spec's form `standard_webhooks_secret(secret)`, i.e.
  "whsec_" + base64(secret), what the `standardwebhooks` libraries take.
Both timestamps are the same and let receivers refuse old replays.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import json
import logging
import re
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from orderflow.core.errors import ValidationFailed
from orderflow.core.events import Event, once_per_batch
from orderflow.core.tenancy import Store
from orderflow.core.topics import TOPICS

from . import egress
from .models import WebhookDelivery, WebhookEndpoint, new_webhook_secret

log = logging.getLogger("orderflow.webhooks")

TOPIC_PATTERN = re.compile(r"^(\*|[a-z0-9_]+(\.([a-z0-9_]+|\*))*(\.\*)?)$")
MAX_TOPICS = 50


# ------------------------------------------------------------------------------ validation


def validate_url(url: str) -> str:
    """https:// to global addresses only — every address the host resolves to (the rules are in
    `alerts.egress`); with WEBHOOKS_ALLOW_HTTP_LOCALHOST also loopback, over http:// too. A name
    that does not resolve (yet) is accepted over https://: the same check runs before every send."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise ValidationFailed(fields={"url": ["Credentials in the URL are not allowed."]})
    try:
        target = egress.parse(url)
    except ValueError:
        raise ValidationFailed(fields={"url": ["Enter an https:// URL."]}) from None
    try:
        addresses = egress.resolve(target.host, target.port)
    except egress.Unresolvable:
        if target.tls:
            return url
        raise ValidationFailed(fields={"url": ["The URL must use https://."]}) from None
    refused = egress.refusal(target, addresses, allow_loopback=loopback_allowed())
    if refused == egress.ADDRESS_NOT_ALLOWED:
        raise ValidationFailed(
            fields={"url": ["The URL must not point at a private, loopback or other internal address."]}
        )
    if refused:
        raise ValidationFailed(fields={"url": ["The URL must use https://."]})
    return url


def loopback_allowed() -> bool:
    """The local-development switch: webhooks to this machine (loopback only, plain http allowed)."""
    return bool(getattr(settings, "WEBHOOKS_ALLOW_HTTP_LOCALHOST", False))


def validate_topics(topics: Any) -> list[str]:
    """A list of topics or fnmatch patterns, each naming at least one topic of the registry."""
    if not isinstance(topics, list) or not topics:
        raise ValidationFailed(fields={"topics": ['List at least one topic, e.g. "order.*" or "*".']})
    if len(topics) > MAX_TOPICS:
        raise ValidationFailed(fields={"topics": [f"At most {MAX_TOPICS} topics."]})
    clean: list[str] = []
    for i, topic in enumerate(topics):
        if not isinstance(topic, str) or len(topic) > 100 or not TOPIC_PATTERN.match(topic.strip()):
            raise ValidationFailed(
                fields={f"topics[{i}]": ['Use a topic or pattern like "order.created", "order.*" or "*".']}
            )
        if not any(fnmatch.fnmatchcase(known, topic.strip()) for known in TOPICS):
            raise ValidationFailed(
                fields={
                    f"topics[{i}]": [
                        f'No event topic matches "{topic.strip()}" (docs/api-contract.md lists them).'
                    ]
                }
            )
        if topic.strip() not in clean:
            clean.append(topic.strip())
    return clean


def topic_matches(patterns: list[str], topic: str) -> bool:
    return any(fnmatch.fnmatchcase(topic, p) for p in patterns)


# ------------------------------------------------------------------------------- endpoints


def create_endpoint(
    *, store: Store, url: str, topics: list[str], active: bool = True, description: str = ""
) -> tuple[WebhookEndpoint, str]:
    """Make an endpoint; returns it with its signing secret (the API shows the secret only now)."""
    url, topics = validate_url(url), validate_topics(topics)
    with transaction.atomic():
        endpoint = WebhookEndpoint.all_stores.create(
            store=store, url=url, topics=topics, active=active, description=description[:200],
            secret=new_webhook_secret(),
        )  # fmt: skip
        _forget_endpoints_on_commit(store)
    return endpoint, endpoint.secret


def update_endpoint(*, store: Store, endpoint: WebhookEndpoint, **changes: Any) -> WebhookEndpoint:
    """Change url, topics, active, description (what is given)."""
    if endpoint.store_id != store.pk:
        raise ValidationFailed("That endpoint belongs to another store.")
    if "url" in changes:
        endpoint.url = validate_url(changes["url"])
    if "topics" in changes:
        endpoint.topics = validate_topics(changes["topics"])
    if "active" in changes:
        endpoint.active = bool(changes["active"])
    if "description" in changes:
        endpoint.description = (changes["description"] or "")[:200]
    with transaction.atomic():
        endpoint.save()
        _forget_endpoints_on_commit(store)
    return endpoint


def delete_endpoint(*, store: Store, endpoint: WebhookEndpoint) -> None:
    """Delete it with its delivery log (pending retries find their row gone and stop)."""
    with transaction.atomic():
        WebhookEndpoint.all_stores.filter(store=store, pk=endpoint.pk).delete()
        _forget_endpoints_on_commit(store)


def _cache_key(store_id: int) -> str:
    return f"alerts:webhook-endpoints:{store_id}"


def _forget_endpoints_on_commit(store: Store) -> None:
    def forget():
        try:
            cache.delete(_cache_key(store.pk))
        except Exception:  # the TTL bounds the staleness anyway
            log.warning("could not invalidate the webhook endpoint cache of store %s", store.pk)

    transaction.on_commit(forget)


def store_wants_event(event: Event) -> bool:
    """Publish-time filter of the fan-out handler: does any active endpoint of the event's store
    want its topic? Same cached lookup the handler uses, asked before a message is spent on it, once
    per publish batch for each store."""
    endpoints = once_per_batch(
        ("webhook_endpoints", event.store_id), lambda: active_endpoint_topics(event.store_id)
    )
    return any(topic_matches(topics, event.topic) for _pk, topics in endpoints)


def active_endpoint_topics(store_id: int) -> list[tuple[str, list[str]]]:
    """(endpoint id, topics) of the store's active endpoints: one indexed query, cached a few seconds
    because this runs for every event of every store."""
    key = _cache_key(store_id)
    try:
        cached = cache.get(key)
    except Exception:
        cached = None
    if cached is not None:
        return cached
    rows = [
        (str(pk), topics)
        for pk, topics in WebhookEndpoint.all_stores.filter(store_id=store_id, active=True).values_list(
            "pk", "topics"
        )
    ]
    try:
        cache.set(key, rows, settings.WEBHOOK_ENDPOINT_CACHE_SECONDS)
    except Exception:
        pass
    return rows


# --------------------------------------------------------------------------------- fan-out


def create_deliveries(*, event: Event) -> list[WebhookDelivery]:
    """One delivery per active endpoint whose topics match the event; each is sent by
    `alerts.deliver_webhook` after commit. Nothing at all is written for a store without endpoints."""
    wanted = [
        pk for pk, topics in active_endpoint_topics(event.store_id) if topic_matches(topics, event.topic)
    ]
    if not wanted:
        return []
    created = []
    endpoints = WebhookEndpoint.all_stores.filter(store_id=event.store_id, active=True, pk__in=wanted)
    for endpoint in endpoints:
        try:
            with transaction.atomic():
                delivery = WebhookDelivery.all_stores.create(
                    store_id=event.store_id,
                    endpoint=endpoint,
                    event=event,
                    topic=event.topic,
                    next_attempt_at=timezone.now(),
                )
        except IntegrityError:  # already fanned out for this endpoint
            continue
        enqueue_delivery(delivery)
        created.append(delivery)
    return created


def redeliver(*, store: Store, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send it again (same delivery id), whatever its state; the attempt count keeps growing."""
    with transaction.atomic():
        WebhookDelivery.all_stores.filter(store=store, pk=delivery.pk).update(
            status=WebhookDelivery.Status.PENDING, next_attempt_at=timezone.now()
        )
        delivery.refresh_from_db()
        enqueue_delivery(delivery)
    return delivery


def enqueue_delivery(delivery: WebhookDelivery) -> None:
    """Queue `alerts.deliver_webhook` after commit (by name: tasks.py imports this module).
    If the broker is down then, the row stays pending and `alerts.resend_stale_deliveries` sends it."""
    args = [str(delivery.pk), delivery.store_id]
    transaction.on_commit(lambda: current_app.send_task("alerts.deliver_webhook", args=args), robust=True)


# --------------------------------------------------------------------------------- sending


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def standard_webhooks_secret(secret: str) -> str:
    """The endpoint's secret in Standard Webhooks form: "whsec_" + base64 of its UTF-8 bytes (the
    spec's secret is base64 of the key; ours is used as text by the Stripe-style signature, so both
    signatures share one key without a second secret to store or show)."""
    return "whsec_" + base64.b64encode(secret.encode()).decode()


def sign_standard(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks `webhook-signature` value for this delivery."""
    mac = hmac.new(secret.encode(), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signature_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Both signatures of one delivery (one timestamp)."""
    return {
        "X-OrderFlow-Signature": sign(secret, timestamp, body),
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_standard(secret, msg_id, timestamp, body),
    }


def verify_signature(secret: str, header: str, body: bytes, *, tolerance_seconds: int | None = None) -> bool:
    """What a receiver does (documented here, used by the tests)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if tolerance_seconds is not None and abs(time.time() - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def event_body(event: Event) -> bytes:
    return json.dumps(event.as_message(), cls=DjangoJSONEncoder, separators=(",", ":")).encode()


class Outcome:
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRY = "retry"
    SKIPPED = "skipped"


def attempt_delivery(*, delivery_id: str, store_id: int, can_retry: bool, retry_in: float = 0.0) -> str:
    """POST the event once (through `alerts.egress`) and record the attempt. 2xx → succeeded;
    3xx/4xx → failed (the receiver refused it: sending it again will not help); 5xx, 408, 429,
    timeouts, connection errors → retry while `can_retry`, else failed; a refused address or an
    oversized reply → failed. Returns an `Outcome`. No transaction is held during the HTTP call."""
    delivery = (
        WebhookDelivery.all_stores.select_related("endpoint", "event", "event__store")
        .filter(store_id=store_id, pk=delivery_id)
        .first()
    )
    if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
        return Outcome.SKIPPED
    endpoint = delivery.endpoint
    if not endpoint.active:
        _record(delivery, status=WebhookDelivery.Status.FAILED, http_status=None, duration_ms=0,
                error="endpoint is inactive")  # fmt: skip
        return Outcome.FAILED
    body = event_body(delivery.event)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "OrderFlow-Webhooks/1.0",
        "X-OrderFlow-Event": delivery.topic,
        "X-OrderFlow-Delivery": str(delivery.pk),
        **signature_headers(endpoint.secret, str(delivery.pk), timestamp, body),
    }
    started = time.monotonic()
    reply = egress.post(
        endpoint.url,
        body=body,
        headers=headers,
        timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
        allow_loopback=loopback_allowed(),
    )
    duration_ms = int((time.monotonic() - started) * 1000)
    http_status = reply.status
    answered = not reply.error and http_status is not None
    # Only a generic text is kept: the store reads it, and a receiver inside could say anything.
    error = reply.error or ("" if 200 <= http_status < 300 else f"receiver answered {http_status}")

    if answered and 200 <= http_status < 300:
        outcome, status = Outcome.SUCCEEDED, WebhookDelivery.Status.SUCCEEDED
    elif answered and 300 <= http_status < 500 and http_status not in (408, 429):
        outcome, status = Outcome.FAILED, WebhookDelivery.Status.FAILED
    elif can_retry and (answered or reply.retryable):
        outcome, status = Outcome.RETRY, WebhookDelivery.Status.PENDING
    else:
        outcome, status = Outcome.FAILED, WebhookDelivery.Status.FAILED
    _record(
        delivery,
        status=status,
        http_status=http_status,
        duration_ms=duration_ms,
        error=error,
        next_attempt_in=retry_in if outcome == Outcome.RETRY else None,
    )
    return outcome


def _record(
    delivery: WebhookDelivery,
    *,
    status: str,
    http_status: int | None,
    duration_ms: int,
    error: str,
    next_attempt_in: float | None = None,
) -> None:
    now = timezone.now()
    history = (delivery.history or [])[-(WebhookDelivery.HISTORY_KEEP - 1) :]
    history.append(
        {"at": now.isoformat(), "http_status": http_status, "duration_ms": duration_ms, "error": error}
    )
    values: dict[str, Any] = {
        "status": status,
        "http_status": http_status,
        "duration_ms": duration_ms,
        "last_error": error[:500],
        "history": history,
        "next_attempt_at": now + timedelta(seconds=next_attempt_in) if next_attempt_in is not None else None,
    }
    if status == WebhookDelivery.Status.SUCCEEDED:
        values["delivered_at"] = now
    WebhookDelivery.all_stores.filter(pk=delivery.pk).update(attempts=F("attempts") + 1, **values)


def resend_stale_deliveries(*, overdue_seconds: float, batch: int = 200) -> int:
    """Re-queue pending deliveries long past their next attempt (the broker was down when they
    were queued, or their message was lost). At-least-once: the receiver dedupes on the id."""
    cutoff = timezone.now() - timedelta(seconds=overdue_seconds)
    rows = list(
        WebhookDelivery.all_stores.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lt=cutoff)
        .order_by("next_attempt_at")
        .values_list("pk", "store_id")[:batch]
    )
    for pk, store_id in rows:
        WebhookDelivery.all_stores.filter(pk=pk).update(next_attempt_at=timezone.now())
        current_app.send_task("alerts.deliver_webhook", args=[str(pk), store_id])
    return len(rows)
