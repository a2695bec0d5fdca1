"""Writes on alerts: raise (open or bump), auto-resolve, acknowledge, resolve.

Events: `alert.opened` when an alert opens, `alert.updated` when a repeat bumps it,
`alert.acknowledged` / `alert.resolved` through the state machine. Each carries
`Alert.as_event_data()` (id, kind, severity, subject, message, count, status).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from celery import current_app
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from orderflow.core.errors import NotFound
from orderflow.core.events import emit
from orderflow.core.statemachine import transition
from orderflow.core.tenancy import Store

from .events import AlertOpened, AlertUpdated
from .models import Alert

SYSTEM_ACTOR = "system:alerts"


def _active(store: Store, kind: str | Iterable[str], subject: str):
    kinds = [kind] if isinstance(kind, str) else list(kind)
    return Alert.all_stores.filter(
        store=store, kind__in=kinds, subject=subject, status__in=Alert.ACTIVE_STATUSES
    )


def _as_uuid(value: Any) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def raise_alert(
    *,
    store: Store,
    kind: str,
    subject: str,
    severity: str = Alert.Severity.WARNING,
    message: str,
    data: dict[str, Any] | None = None,
    event_id: int | None = None,
    order_id: uuid.UUID | str | None = None,
    actor: str = SYSTEM_ACTOR,
) -> Alert:
    """Open the alert for (kind, subject), or bump the one already open.

    Two workers raising the same alert at once: the partial unique constraint lets one INSERT win;
    the other catches the IntegrityError (inside a savepoint) and bumps the winner's row instead."""
    with transaction.atomic():
        existing = _active(store, kind, subject).select_for_update().first()
        if existing is not None:
            return _bump(
                existing, store=store, severity=severity, message=message, data=data, event_id=event_id
            )
        now = timezone.now()
        try:
            with transaction.atomic():
                alert = Alert.all_stores.create(
                    store=store,
                    kind=kind,
                    subject=subject[:128],
                    severity=severity,
                    message=message[:500],
                    data=data or {},
                    event_id=event_id,
                    order_id=_as_uuid(order_id),
                    first_seen_at=now,
                    last_seen_at=now,
                )
        except IntegrityError:
            existing = _active(store, kind, subject).select_for_update().get()
            return _bump(
                existing, store=store, severity=severity, message=message, data=data, event_id=event_id
            )
        emit(
            AlertOpened(**alert.as_event_data()),
            store=store,
            order_id=alert.order_id,
            subject=alert,
            actor=actor,
        )
        if alert.severity == Alert.Severity.CRITICAL and settings.ALERT_EMAIL_TO:
            # By name, after commit: tasks.py imports this module, not the other way round.
            args = [alert.pk, store.pk]
            transaction.on_commit(
                lambda: current_app.send_task("alerts.send_alert_email", args=args), robust=True
            )
        return alert


def _bump(
    alert: Alert,
    *,
    store: Store,
    severity: str,
    message: str,
    data: dict[str, Any] | None,
    event_id: int | None,
) -> Alert:
    """A repeat: count it, keep the latest message/cause, never lower the severity."""
    now = timezone.now()
    if Alert.SEVERITY_RANK.get(severity, 0) > Alert.SEVERITY_RANK.get(alert.severity, 0):
        alert.severity = severity
    values: dict[str, Any] = {
        "count": F("count") + 1,
        "last_seen_at": now,
        "severity": alert.severity,
        "message": message[:500],
        "updated_at": now,
    }
    if data is not None:
        values["data"] = data
    if event_id is not None:
        values["event_id"] = event_id
    Alert.all_stores.filter(pk=alert.pk).update(**values)
    alert.refresh_from_db()
    alert.store = store
    emit(
        AlertUpdated(**alert.as_event_data()),
        store=store,
        order_id=alert.order_id,
        subject=alert,
        actor=SYSTEM_ACTOR,
    )
    return alert


def resolve_alerts(
    *,
    store: Store,
    kind: str | Iterable[str],
    subject: str,
    actor: str = SYSTEM_ACTOR,
    reason: str = "",
    data_contains: dict[str, Any] | None = None,
) -> list[Alert]:
    """Auto-resolve whatever is open for (kind or kinds, subject): the condition has cleared.
    `data_contains` narrows it to alerts whose latest cause said so (e.g. {"forecast": True}).
    A no-op (no event) when nothing is open."""
    resolved = []
    qs = _active(store, kind, subject)
    if data_contains:
        qs = qs.filter(data__contains=data_contains)
    with transaction.atomic():
        for alert in qs.select_for_update().order_by("id"):
            resolved.append(_resolve(alert, actor=actor, reason=reason))
    return resolved


def _resolve(alert: Alert, *, actor: str, reason: str) -> Alert:
    now = timezone.now()
    return transition(
        alert,
        Alert.Status.RESOLVED,
        reason=reason,
        actor=actor,
        updates={"resolved_at": now, "resolved_by": actor[:150]},
        data=_event_data(alert, Alert.Status.RESOLVED),
    )


def _event_data(alert: Alert, to: str) -> dict[str, Any]:
    return {**alert.as_event_data(), "status": to}


def acknowledge(*, store: Store, alert: Alert, actor: str) -> Alert:
    """An operator has seen it. Acknowledging an acknowledged alert is a no-op; a resolved one
    refuses (409 invalid_transition)."""
    _check_store(store, alert)
    with transaction.atomic():
        alert = Alert.all_stores.select_for_update().get(pk=alert.pk)
        if alert.status == Alert.Status.ACKNOWLEDGED:
            return alert
        return transition(
            alert,
            Alert.Status.ACKNOWLEDGED,
            reason="acknowledged",
            actor=actor,
            updates={"acknowledged_at": timezone.now(), "acknowledged_by": actor[:150]},
            data=_event_data(alert, Alert.Status.ACKNOWLEDGED),
        )


def resolve(*, store: Store, alert: Alert, actor: str, reason: str = "resolved by operator") -> Alert:
    """An operator closes it. Resolving a resolved alert is a no-op (the same answer as before)."""
    _check_store(store, alert)
    with transaction.atomic():
        alert = Alert.all_stores.select_for_update().get(pk=alert.pk)
        if alert.status == Alert.Status.RESOLVED:
            return alert
        return _resolve(alert, actor=actor, reason=reason)


def _check_store(store: Store, alert: Alert) -> None:
    if alert.store_id != store.pk:  # callers look alerts up within the store; this is the backstop
        raise NotFound("No such alert.")


def send_alert_email(*, alert: Alert) -> int:
    """E-mail a critical alert to settings.ALERT_EMAIL_TO (Django's mail backend)."""
    recipients = list(settings.ALERT_EMAIL_TO)
    if not recipients:
        return 0
    subject = f"[OrderFlow {alert.store.slug}] {alert.severity.upper()}: {alert.message}"[:200]
    body = (
        f"Store: {alert.store.name} ({alert.store.slug})\n"
        f"Kind: {alert.kind}\nSubject: {alert.subject}\nSeverity: {alert.severity}\n"
        f"Status: {alert.status}\nFirst seen: {alert.first_seen_at.isoformat()}\n"
        f"Count: {alert.count}\n\n{alert.message}\n"
    )
    return send_mail(subject, body, None, recipients, fail_silently=False)
