"""Catalogue and stock: products, stock levels held by database constraints, and the ledger.

`StockLevel.on_hand` and `.reserved` always equal the sums of `StockMovement.on_hand_delta` and
`.reserved_delta` for that product: every service writes the level and its ledger row in one
transaction, and the CHECK constraints make an oversell impossible even for a future bug.
"""

from django.db import models
from django.db.models import F, Q

from orderflow.core.tenancy import TenantModel


class Product(TenantModel):
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    price = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    active = models.BooleanField(default=True)
    lead_time_days = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["sku"]
        constraints = [
            models.UniqueConstraint(fields=["store", "sku"], name="product_unique_store_sku"),
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} — {self.name}"


class StockLevel(TenantModel):
    product = models.OneToOneField(Product, on_delete=models.CASCADE, related_name="stock")
    on_hand = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)
    low_stock_threshold = models.IntegerField(default=10)
    # The watchdog's memory of the current crossing: set when it reported "at or under the
    # threshold", cleared when stock goes back above it, so it reports once per crossing.
    threshold_reached_at = models.DateTimeField(null=True, blank=True)
    forecast_alerted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        constraints = [
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="stock_on_hand_not_negative"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="stock_reserved_not_negative"),
            models.CheckConstraint(
                condition=Q(reserved__lte=F("on_hand")), name="stock_reserved_within_on_hand"
            ),
            models.CheckConstraint(
                condition=Q(low_stock_threshold__gte=0), name="stock_threshold_not_negative"
            ),
        ]
        indexes = [models.Index(fields=["store", "product"], name="stocklevel_store_product")]

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @property
    def is_low(self) -> bool:
        return self.available <= self.low_stock_threshold


class StockMovement(TenantModel):
    """Append-only ledger: one row per stock change, with its order or its user."""

    class Kind(models.TextChoices):
        RESERVE = "reserve"
        RELEASE = "release"
        COMMIT = "commit"
        RESTOCK = "restock"
        ADJUST = "adjust"

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="movements")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    quantity = models.IntegerField()
    on_hand_delta = models.IntegerField(default=0)
    reserved_delta = models.IntegerField(default=0)
    order_id = models.UUIDField(null=True, blank=True)
    actor = models.CharField(max_length=150, blank=True, default="")
    note = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["store", "product", "-id"], name="movement_store_product"),
            models.Index(fields=["store", "order_id"], name="movement_store_order"),
            models.Index(fields=["store", "kind", "created_at"], name="movement_store_kind_time"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.quantity} of {self.product_id}"
