"""Admin for payments: each payment with its attempts inline; read-only, because money moves only
through the gateway and the services (an edited status here would lie about the bank)."""

from django.contrib import admin, messages

from orderflow.core.admin_scoping import StoreScopedAdmin, StoreScopedInline

from . import tasks
from .models import Payment, PaymentAttempt, Refund


class PaymentAttemptInline(StoreScopedInline, admin.TabularInline):
    model = PaymentAttempt
    extra = 0
    can_delete = False
    fields = [
        "number", "started_at", "finished_at", "outcome", "http_status", "error_code", "decline_code",
        "latency_ms", "charge_id", "message",
    ]  # fmt: skip
    readonly_fields = fields
    ordering = ["number"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Payment)
class PaymentAdmin(StoreScopedAdmin):
    list_display = [
        "id", "store", "order", "status", "amount", "currency", "attempts", "error_code",
        "gateway_charge_id", "created_at",
    ]  # fmt: skip
    list_filter = ["status", "store", "error_code", "created_at"]
    search_fields = ["id", "order__id", "order__customer_email", "gateway_charge_id", "idempotency_key"]
    list_select_related = ["store", "order"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Payment._meta.fields]
    inlines = [PaymentAttemptInline]
    actions = ["refund_selected"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(
        description="Refund what remains of the selected payments (captured ones only)",
        permissions=["manage_orders"],
    )
    def refund_selected(self, request, queryset):
        """Queue the refund of each payment's remaining capture (`refunds.refund_remaining`); a
        payment refunded in part before gets only the rest. Partial refunds: the order page."""
        queued = 0
        for payment in queryset.filter(status__in=Payment.REFUNDABLE_STATUSES):
            tasks.refund_payment.delay(str(payment.pk), payment.store_id)
            queued += 1
        self.message_user(request, f"Queued {queued} refund(s).", messages.INFO)


@admin.register(Refund)
class RefundAdmin(StoreScopedAdmin):
    """Read-only: a refund is made through the API, the order page or the action above."""

    list_display = ["id", "store", "order", "status", "amount", "currency", "restock", "actor", "created_at"]
    list_filter = ["status", "store", "restock", "created_at"]
    search_fields = ["id", "order__id", "gateway_refund_id", "idempotency_key"]
    list_select_related = ["store", "order"]
    readonly_fields = [f.name for f in Refund._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PaymentAttempt)
class PaymentAttemptAdmin(StoreScopedAdmin):
    list_display = ["payment", "number", "outcome", "http_status", "error_code", "latency_ms", "started_at"]
    list_filter = ["outcome", "store"]
    search_fields = ["payment__id", "charge_id", "error_code"]
    readonly_fields = [f.name for f in PaymentAttempt._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
