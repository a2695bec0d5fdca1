"""Reads on alerts and webhooks. Every function takes the store first (no path skips tenancy)."""

from __future__ import annotations

import uuid

from django.db.models import Count, QuerySet

from orderflow.core.errors import NotFound
from orderflow.core.tenancy import Store

from .models import Alert, WebhookDelivery, WebhookEndpoint


def alerts(
    store: Store, *, status: str | None = None, kind: str | None = None, severity: str | None = None
) -> QuerySet[Alert]:
    """The store's alerts, most recently seen first, optionally filtered."""
    qs = Alert.objects.for_store(store).order_by("-last_seen_at", "-id")
    return filter_alerts(qs, status=status, kind=kind, severity=severity)


def filter_alerts(
    qs: QuerySet[Alert], *, status: str | None = None, kind: str | None = None, severity: str | None = None
) -> QuerySet[Alert]:
    if status:
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(kind=kind)
    if severity:
        qs = qs.filter(severity=severity)
    return qs


def active_alerts(store: Store) -> QuerySet[Alert]:
    """Open or acknowledged (= not resolved), most recently seen first."""
    return (
        Alert.objects.for_store(store)
        .filter(status__in=Alert.ACTIVE_STATUSES)
        .order_by("-last_seen_at", "-id")
    )


def get_alert(store: Store, alert_id: int | str) -> Alert:
    try:
        return Alert.objects.for_store(store).get(pk=int(alert_id))
    except (Alert.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such alert.")


def open_alert_counts_by_severity(store: Store) -> dict[str, int]:
    """Not-resolved alerts per severity, every severity present: {"info": 0, "warning": 2, "critical": 1}."""
    counts = {s.value: 0 for s in Alert.Severity}
    rows = (
        Alert.objects.for_store(store)
        .filter(status__in=Alert.ACTIVE_STATUSES)
        .values("severity")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        counts[row["severity"]] = row["n"]
    return counts


# ------------------------------------------------------------------------------- webhooks


def webhook_endpoints(store: Store) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.for_store(store).order_by("-created_at")


def get_webhook_endpoint(store: Store, endpoint_id: uuid.UUID | str) -> WebhookEndpoint:
    try:
        return WebhookEndpoint.objects.for_store(store).get(pk=uuid.UUID(str(endpoint_id)))
    except (WebhookEndpoint.DoesNotExist, ValueError):
        raise NotFound("No such webhook endpoint.")


def webhook_deliveries(
    store: Store, *, endpoint: WebhookEndpoint | None = None, status: str | None = None
) -> QuerySet[WebhookDelivery]:
    """Newest first; the integrity page's live log reads `webhook_deliveries(store)[:50]`."""
    qs = WebhookDelivery.objects.for_store(store).select_related("endpoint")
    if endpoint is not None:
        qs = qs.filter(endpoint=endpoint)
    return filter_webhook_deliveries(qs.order_by("-created_at"), status=status)


def filter_webhook_deliveries(
    qs: QuerySet[WebhookDelivery], *, status: str | None = None
) -> QuerySet[WebhookDelivery]:
    if status:
        qs = qs.filter(status=status)
    return qs


def get_webhook_delivery(
    store: Store, endpoint: WebhookEndpoint, delivery_id: uuid.UUID | str
) -> WebhookDelivery:
    try:
        return WebhookDelivery.objects.for_store(store).get(endpoint=endpoint, pk=uuid.UUID(str(delivery_id)))
    except (WebhookDelivery.DoesNotExist, ValueError):
        raise NotFound("No such delivery.")


# ------------------------------------------------------- reads for the dashboard


def state_machines() -> dict[str, type]:
    """The machine this app declares (its TRANSITIONS table), by workflow step: what the
    dashboard's workflow page draws, without reaching into alerts' models."""
    return {"alert": Alert}


def filter_choices() -> dict[str, list[tuple[str, str]]]:
    """The (value, label) choices of the alert list's filters."""
    return {
        "statuses": list(Alert.Status.choices),
        "kinds": list(Alert.Kind.choices),
        "severities": list(Alert.Severity.choices),
    }


def open_critical_counts_by_store() -> dict[int, int]:
    """Platform staff, every store at once: not-resolved critical alerts per store id (stores with
    none are absent)."""
    rows = (
        Alert.all_stores.filter(status__in=Alert.ACTIVE_STATUSES, severity=Alert.Severity.CRITICAL)
        .values("store_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {r["store_id"]: r["n"] for r in rows}
