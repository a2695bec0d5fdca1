"""Admin: orders with their lines inline and their event trail read-only. Orders change only
through services (the state machine), so every field here is read-only; the one action, cancel,
calls `cancel` like the API does."""

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from orderflow.core.admin_scoping import StoreScopedAdmin, StoreScopedInline
from orderflow.core.errors import DomainError

from . import selectors, services
from .models import IdempotencyRecord, Order, OrderItem


class OrderItemInline(StoreScopedInline, admin.TabularInline):
    model = OrderItem
    extra = 0
    fields = ["sku", "name", "quantity", "unit_price", "line_total"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(StoreScopedAdmin):
    list_display = [
        "number",
        "store",
        "status",
        "payment_status",
        "fulfillment_status",
        "customer_email",
        "total",
        "currency",
        "risk_decision",
        "created_at",
    ]
    list_filter = ["status", "payment_status", "fulfillment_status", "risk_decision", "store"]
    search_fields = ["=number", "customer_email", "=id"]
    list_select_related = ["store"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    inlines = [OrderItemInline]
    actions = ["cancel_selected"]
    fieldsets = [
        (None, {"fields": ["id", "store", "number", "status", "payment_status", "fulfillment_status"]}),
        ("Customer", {"fields": ["customer_email", "customer_name", "client_ip"]}),
        (
            "Shipping",
            {
                "fields": [
                    "shipping_line1",
                    "shipping_line2",
                    "shipping_city",
                    "shipping_postal_code",
                    "shipping_country",
                ]
            },
        ),
        (
            "Money",
            {"fields": ["subtotal", "total", "currency", "card_brand", "card_last4", "payment_attempts"]},
        ),
        ("Risk", {"fields": ["risk_score", "risk_decision", "risk_rules"]}),
        (
            "Tracking",
            {"fields": ["tracking_token", "metadata", "created_at", "updated_at", "paid_at", "shipped_at"]},
        ),
        ("Event trail", {"fields": ["event_trail"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Order._meta.fields] + ["event_trail"]

    def has_add_permission(self, request):
        return False  # orders come in through the API (place_order), never by hand

    def has_delete_permission(self, request, obj=None):
        return False  # the order is part of the audit trail; cancel it instead

    @admin.display(description="Events (oldest first)")
    def event_trail(self, obj: Order):
        events = list(selectors.order_events(obj.store, obj)[:500])
        if not events:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            (
                (e.pk, e.created_at.strftime("%Y-%m-%d %H:%M:%S"), e.topic, e.actor, str(e.data)[:300])
                for e in events
            ),
        )
        return format_html(
            "<table><thead><tr><th>#</th><th>When (UTC)</th><th>Topic</th><th>Actor</th><th>Data</th>"
            "</tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.action(description="Cancel selected orders", permissions=["manage_orders"])
    def cancel_selected(self, request, queryset):
        done, refused = 0, []
        actor = request.user.get_username()
        for order in queryset.select_related("store"):
            try:
                services.cancel(store=order.store, order=order, actor=actor, reason="cancelled in admin")
                done += 1
            except DomainError as exc:
                refused.append(f"#{order.number}: {exc.message}")
        if done:
            self.message_user(request, f"Cancelled {done} order(s).")
        if refused:
            self.message_user(request, "Refused — " + "; ".join(refused), messages.WARNING)


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(StoreScopedAdmin):
    list_display = ["key", "store", "state", "response_status", "order_id", "replays", "created_at"]
    list_filter = ["state", "store"]
    search_fields = ["=key", "=order_id"]
    exclude = ["response_body"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in IdempotencyRecord._meta.fields if f.name != "response_body"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
