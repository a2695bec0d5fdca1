"""Fulfillment and delivery: the warehouse's pick list for a paid order, and the carrier's shipment.

Two state machines, each declared once as a table (the workflow graph and the docs are drawn from
them):

- `Fulfillment`: pending → picking → packed → ready_to_ship → shipped, and `cancelled` from every
  state before `shipped` (the order's own table allows cancelling until it ships; once the parcel
  has left, a cancellation is refused with 409).
- `Shipment`: label_created → in_transit → out_for_delivery → delivered, with the exception branch
  in_transit|out_for_delivery → exception → in_transit | returned.
"""

from django.db import models
from django.db.models import F, Q

from orderflow.core.tenancy import TenantModel

from .events import FulfillmentMoved, ShipmentMoved


class Fulfillment(TenantModel):
    class Status(models.TextChoices):
        PENDING = "pending"
        PICKING = "picking"
        PACKED = "packed"
        READY_TO_SHIP = "ready_to_ship"
        SHIPPED = "shipped"
        CANCELLED = "cancelled"

    S = Status
    TRANSITIONS = {
        S.PENDING: {S.PICKING, S.CANCELLED},
        S.PICKING: {S.PACKED, S.CANCELLED},
        S.PACKED: {S.READY_TO_SHIP, S.CANCELLED},
        S.READY_TO_SHIP: {S.SHIPPED, S.CANCELLED},
        S.SHIPPED: set(),
        S.CANCELLED: set(),
    }
    del S
    EVENT_PREFIX = "fulfillment"
    EVENT_STEP = "fulfillment"
    EVENT_PAYLOAD = FulfillmentMoved

    order = models.OneToOneField("orders.Order", on_delete=models.CASCADE, related_name="fulfillment")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    package_count = models.PositiveSmallIntegerField(null=True, blank=True)
    weight_grams = models.PositiveIntegerField(null=True, blank=True)
    picked_by = models.CharField(max_length=150, blank=True, default="")
    picked_at = models.DateTimeField(null=True, blank=True)
    packed_by = models.CharField(max_length=150, blank=True, default="")
    packed_at = models.DateTimeField(null=True, blank=True)
    ready_by = models.CharField(max_length=150, blank=True, default="")
    ready_at = models.DateTimeField(null=True, blank=True)
    shipped_by = models.CharField(max_length=150, blank=True, default="")
    shipped_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.CharField(max_length=150, blank=True, default="")
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["store", "-created_at"], name="ful_store_created"),
            models.Index(fields=["store", "status", "-created_at"], name="ful_store_status_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(package_count__isnull=True) | Q(package_count__gte=1),
                name="ful_package_count_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"Fulfillment {self.pk} ({self.status})"

    @property
    def is_fully_picked(self) -> bool:
        return all(line.picked >= line.quantity for line in self.lines.all())


class FulfillmentLine(TenantModel):
    """One pick-list line: what the order needs (`quantity`) and what the picker has (`picked`)."""

    fulfillment = models.ForeignKey(Fulfillment, on_delete=models.CASCADE, related_name="lines")
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=200, blank=True, default="")
    quantity = models.PositiveIntegerField()
    picked = models.PositiveIntegerField(default=0)

    class Meta(TenantModel.Meta):
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["store", "fulfillment", "sku"], name="fulline_unique_sku"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="fulline_quantity_positive"),
            models.CheckConstraint(condition=Q(picked__lte=F("quantity")), name="fulline_picked_within_qty"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.picked}/{self.quantity}"


class Shipment(TenantModel):
    class Status(models.TextChoices):
        LABEL_CREATED = "label_created"
        IN_TRANSIT = "in_transit"
        OUT_FOR_DELIVERY = "out_for_delivery"
        DELIVERED = "delivered"
        EXCEPTION = "exception"
        RETURNED = "returned"

    S = Status
    TRANSITIONS = {
        S.LABEL_CREATED: {S.IN_TRANSIT},
        S.IN_TRANSIT: {S.OUT_FOR_DELIVERY, S.EXCEPTION},
        S.OUT_FOR_DELIVERY: {S.DELIVERED, S.EXCEPTION},
        S.EXCEPTION: {S.IN_TRANSIT, S.RETURNED},
        S.DELIVERED: set(),
        S.RETURNED: set(),
    }
    del S
    EVENT_PREFIX = "shipment"
    EVENT_STEP = "shipment"
    EVENT_PAYLOAD = ShipmentMoved

    fulfillment = models.OneToOneField(Fulfillment, on_delete=models.CASCADE, related_name="shipment")
    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="shipments")
    carrier = models.CharField(max_length=32)
    # Globally unique, not per store: the carrier's webhook carries no store, only this number.
    tracking_number = models.CharField(max_length=40, unique=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.LABEL_CREATED)
    label_created_at = models.DateTimeField()
    estimated_delivery = models.DateField(null=True, blank=True)
    # When the newest applied carrier update happened (carrier time): older updates are ignored.
    last_event_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["store", "status", "-created_at"], name="shp_store_status_created"),
            models.Index(fields=["store", "order"], name="shp_store_order"),
        ]

    def __str__(self) -> str:
        return f"{self.carrier} {self.tracking_number} ({self.status})"

    def tracking_data(self) -> dict:
        """The fields every `shipment.*` event carries (the order's tracking view is built from them)."""
        return {
            "carrier": self.carrier,
            "tracking_number": self.tracking_number,
            "status": self.status,
            "estimated_delivery": self.estimated_delivery.isoformat() if self.estimated_delivery else None,
            "occurred_at": self.last_event_at.isoformat() if self.last_event_at else None,
        }


class CarrierEvent(TenantModel):
    """Every carrier update we accepted for a known shipment, applied or ignored.

    The unique (store, carrier, event_id) makes a replayed update a no-op. An event id belongs to
    one tracking number and so to one store, so scoping the constraint by store loses nothing."""

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="carrier_events")
    carrier = models.CharField(max_length=32)
    event_id = models.CharField(max_length=100)
    tracking_number = models.CharField(max_length=40)
    status = models.CharField(max_length=20)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    applied = models.BooleanField(default=False)
    ignored_reason = models.CharField(max_length=40, blank=True, default="")
    source = models.CharField(max_length=20, default="webhook")

    class Meta(TenantModel.Meta):
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["store", "carrier", "event_id"], name="carrierevent_unique_event"
            ),
        ]
        indexes = [models.Index(fields=["store", "shipment", "id"], name="carrierevent_store_shipment")]

    def __str__(self) -> str:
        return f"{self.carrier}:{self.event_id} {self.status}"
