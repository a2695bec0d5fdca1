"""Admin: fulfillments (pick list inline) and shipments; actions call the same services the API does."""

from django.contrib import admin, messages

from orderflow.core.admin_scoping import StoreScopedAdmin, StoreScopedInline
from orderflow.core.errors import DomainError

from . import delivery, services
from .models import CarrierEvent, Fulfillment, FulfillmentLine, Shipment


def _run(modeladmin, request, queryset, step) -> None:
    """Apply `step(obj, actor)` to each selected row; report what worked and what was refused."""
    done, refused = 0, []
    for obj in queryset:
        try:
            step(obj, request.user.get_username())
            done += 1
        except DomainError as exc:
            refused.append(f"{obj.pk}: {exc.message}")
    if done:
        modeladmin.message_user(request, f"Done for {done} row(s).")
    if refused:
        modeladmin.message_user(request, "Refused — " + "; ".join(refused), messages.WARNING)


class FulfillmentLineInline(StoreScopedInline, admin.TabularInline):
    model = FulfillmentLine
    extra = 0
    fields = ["sku", "name", "quantity", "picked"]
    readonly_fields = ["sku", "name", "quantity", "picked"]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class ShipmentInline(StoreScopedInline, admin.StackedInline):
    model = Shipment
    extra = 0
    fields = [
        "carrier",
        "tracking_number",
        "status",
        "label_created_at",
        "estimated_delivery",
        "last_event_at",
    ]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Fulfillment)
class FulfillmentAdmin(StoreScopedAdmin):
    list_display = [
        "id",
        "store",
        "order",
        "status",
        "package_count",
        "weight_grams",
        "created_at",
        "updated_at",
    ]
    list_filter = ["status", "store"]
    search_fields = ["order__id", "order__number", "order__customer_email", "lines__sku"]
    list_select_related = ["store", "order"]
    readonly_fields = [f.name for f in Fulfillment._meta.fields]
    inlines = [FulfillmentLineInline, ShipmentInline]
    actions = ["pick_all", "pack_one_parcel", "mark_ready", "ship_default_carrier"]

    def has_add_permission(self, request):
        return False  # a fulfillment comes from a paid order, never by hand

    @admin.action(description="Pick every line", permissions=["manage_fulfillment"])
    def pick_all(self, request, queryset):
        _run(
            self, request, queryset, lambda f, actor: services.pick(store=f.store, fulfillment=f, actor=actor)
        )

    @admin.action(description="Pack (one parcel, estimated weight)", permissions=["manage_fulfillment"])
    def pack_one_parcel(self, request, queryset):
        def step(f, actor):
            units = sum(line.quantity for line in f.lines.all())
            services.pack(
                store=f.store,
                fulfillment=f,
                packages=1,
                weight_grams=max(1, units * services.DEFAULT_UNIT_WEIGHT_GRAMS),
                actor=actor,
            )

        _run(self, request, queryset, step)

    @admin.action(description="Mark ready to ship", permissions=["manage_fulfillment"])
    def mark_ready(self, request, queryset):
        _run(self, request, queryset, lambda f, a: services.mark_ready(store=f.store, fulfillment=f, actor=a))

    @admin.action(description="Ship with the default carrier", permissions=["manage_fulfillment"])
    def ship_default_carrier(self, request, queryset):
        _run(
            self,
            request,
            queryset,
            lambda f, a: services.ship(
                store=f.store, fulfillment=f, carrier=services.default_carrier(), actor=a
            ),
        )


class CarrierEventInline(StoreScopedInline, admin.TabularInline):
    model = CarrierEvent
    extra = 0
    fields = ["event_id", "status", "occurred_at", "received_at", "applied", "ignored_reason", "source"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


_NEXT = {
    Shipment.Status.LABEL_CREATED: Shipment.Status.IN_TRANSIT,
    Shipment.Status.IN_TRANSIT: Shipment.Status.OUT_FOR_DELIVERY,
    Shipment.Status.OUT_FOR_DELIVERY: Shipment.Status.DELIVERED,
    Shipment.Status.EXCEPTION: Shipment.Status.IN_TRANSIT,
}


@admin.register(Shipment)
class ShipmentAdmin(StoreScopedAdmin):
    list_display = ["tracking_number", "carrier", "store", "status", "estimated_delivery", "last_event_at"]
    list_filter = ["status", "carrier", "store"]
    search_fields = ["tracking_number", "order__id", "order__number"]
    list_select_related = ["store"]
    readonly_fields = [f.name for f in Shipment._meta.fields]
    inlines = [CarrierEventInline]
    actions = ["advance", "report_exception", "mark_returned"]

    def has_add_permission(self, request):
        return False  # shipments come from the ship step

    def _advance(self, request, queryset, to_of) -> None:
        def step(s, actor):
            to = to_of(s)
            if to is None:
                raise DomainError(f"nothing follows '{s.status}'")
            delivery.advance_shipment(shipment=s, to=to, actor=actor, source="operator")

        _run(self, request, queryset, step)

    @admin.action(description="Advance to the next status", permissions=["manage_fulfillment"])
    def advance(self, request, queryset):
        self._advance(request, queryset, lambda s: _NEXT.get(s.status))

    @admin.action(description="Report a delivery exception", permissions=["manage_fulfillment"])
    def report_exception(self, request, queryset):
        self._advance(request, queryset, lambda s: Shipment.Status.EXCEPTION)

    @admin.action(description="Mark returned to sender", permissions=["manage_fulfillment"])
    def mark_returned(self, request, queryset):
        self._advance(request, queryset, lambda s: Shipment.Status.RETURNED)
