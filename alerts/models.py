"""Alerts and outgoing webhooks.

An `Alert` is raised from events only, so every alert has an event behind it (`event_id` is the
latest cause). At most one alert per (store, kind, subject) is not resolved: the partial unique
constraint holds that even when two workers raise the same alert at once; repeats bump `count`.

A `WebhookEndpoint` subscribes a store's URL to topic patterns; each matching event becomes one
`WebhookDelivery` (unique per endpoint and event) whose id stays the same across retries, so the
receiver can deduplicate.
"""

from __future__ import annotations

import secrets
import uuid

from django.db import models
from django.db.models import Q

from orderflow.core.tenancy import TenantModel

from .events import AlertMoved


class Alert(TenantModel):
    class Kind(models.TextChoices):
        LOW_STOCK = "low_stock"
        OUT_OF_STOCK = "out_of_stock"
        PAYMENT_RETRYING = "payment_retrying"
        PAYMENT_FAILED = "payment_failed"
        FRAUD_REVIEW = "fraud_review"
        GATEWAY_DOWN = "gateway_down"
        DELIVERY_EXCEPTION = "delivery_exception"
        ORDER_RECONCILED = "order_reconciled"  # the stuck-order reconciler repaired an order
        ORDER_EXPIRED = "order_expired"  # an unpaid order expired

    class Severity(models.TextChoices):
        INFO = "info"
        WARNING = "warning"
        CRITICAL = "critical"

    class Status(models.TextChoices):
        OPEN = "open"
        ACKNOWLEDGED = "acknowledged"
        RESOLVED = "resolved"

    S = Status
    TRANSITIONS = {
        S.OPEN: {S.ACKNOWLEDGED, S.RESOLVED},
        S.ACKNOWLEDGED: {S.RESOLVED},
        S.RESOLVED: set(),
    }
    del S
    EVENT_PREFIX = "alert"
    EVENT_STEP = "alert"
    EVENT_PAYLOAD = AlertMoved
    # "Open" in the one-per-subject sense: anything not resolved.
    ACTIVE_STATUSES = (Status.OPEN, Status.ACKNOWLEDGED)
    SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}

    kind = models.CharField(max_length=32, choices=Kind.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    subject = models.CharField(max_length=128, help_text='What it is about: "sku:TSHIRT-M", "order:<id>".')
    message = models.CharField(max_length=500)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    count = models.PositiveIntegerField(default=1)
    order_id = models.UUIDField(null=True, blank=True)
    event_id = models.BigIntegerField(null=True, blank=True, help_text="The latest event that raised it.")
    data = models.JSONField(default=dict, blank=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    acknowledged_by = models.CharField(max_length=150, blank=True, default="")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=150, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["-last_seen_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["store", "kind", "subject"],
                condition=~Q(status="resolved"),
                name="alert_one_open_per_kind_subject",
            ),
            models.CheckConstraint(condition=Q(count__gte=1), name="alert_count_positive"),
        ]
        indexes = [
            models.Index(fields=["store", "-last_seen_at"], name="alert_store_seen"),
            models.Index(fields=["store", "status", "-last_seen_at"], name="alert_store_status_seen"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject} ({self.status}, x{self.count})"

    @property
    def is_active(self) -> bool:
        return self.status != self.Status.RESOLVED

    def as_event_data(self) -> dict:
        """What every `alert.*` event carries (lean: enough for a push or a webhook to render it)."""
        return {
            "id": self.pk,
            "kind": self.kind,
            "severity": self.severity,
            "subject": self.subject,
            "message": self.message,
            "count": self.count,
            "status": self.status,
        }


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookEndpoint(TenantModel):
    """A store's URL subscribed to topic patterns ("order.*", "alert.opened", "*").

    The secret signs every delivery; it must be kept in clear to sign, and the API shows it once."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    url = models.URLField(max_length=500)
    topics = models.JSONField(default=list)
    active = models.BooleanField(default=True)
    description = models.CharField(max_length=200, blank=True, default="")
    secret = models.CharField(max_length=100, default=new_webhook_secret, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["store", "active"], name="webhook_store_active")]

    def __str__(self) -> str:
        return f"{self.url} ({', '.join(self.topics)})"


class WebhookDelivery(TenantModel):
    """One event sent (or being sent) to one endpoint; its id is the X-OrderFlow-Delivery header."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey("core.Event", on_delete=models.CASCADE, related_name="+")
    topic = models.CharField(max_length=100)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True, default="")
    # The last few attempts (at, http_status, duration_ms, error), newest last: the delivery log.
    history = models.JSONField(default=list, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    HISTORY_KEEP = 20

    class Meta(TenantModel.Meta):
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["store", "endpoint", "event"], name="webhookdelivery_once_per_endpoint_event"
            )
        ]
        indexes = [
            models.Index(fields=["store", "endpoint", "-created_at"], name="whdelivery_store_endpoint"),
            models.Index(fields=["store", "-created_at"], name="whdelivery_store_created"),
            models.Index(
                fields=["next_attempt_at"], name="whdelivery_pending_due", condition=Q(status="pending")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.topic} → {self.endpoint_id} ({self.status})"
