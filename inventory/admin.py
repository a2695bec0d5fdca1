"""Admin for the stock desk: products with their stock, levels with a low-stock filter, the ledger
read-only. Stock changes go through the services (the restock action), so the ledger stays whole:
on_hand and reserved are never editable here."""

from django import forms
from django.contrib import admin, messages
from django.db.models import F
from django.shortcuts import render

from orderflow.core.admin_scoping import StoreScopedAdmin, StoreScopedInline
from orderflow.core.errors import DomainError
from orderflow.core.permissions import Perm

from . import services
from .models import Product, StockLevel, StockMovement


class StockLevelInline(StoreScopedInline, admin.StackedInline):
    model = StockLevel
    can_delete = False
    extra = 0
    max_num = 0  # created with the product by the service, never here
    fields = ["on_hand", "reserved", "available", "low_stock_threshold", "threshold_reached_at"]
    readonly_fields = ["on_hand", "reserved", "available", "low_stock_threshold", "threshold_reached_at"]

    @admin.display(description="available")
    def available(self, obj):
        return obj.available


class LowStockFilter(admin.SimpleListFilter):
    title = "stock"
    parameter_name = "stock"

    def lookups(self, request, model_admin):
        return [
            ("low", "At or under threshold"),
            ("out", "Out of stock (nothing available)"),
            ("ok", "Above threshold"),
        ]

    def queryset(self, request, queryset):
        prefix = "" if queryset.model is StockLevel else "stock__"
        low = {f"{prefix}on_hand__lte": F(f"{prefix}reserved") + F(f"{prefix}low_stock_threshold")}
        if self.value() == "low":
            return queryset.filter(**low)
        if self.value() == "out":
            return queryset.filter(**{f"{prefix}on_hand__lte": F(f"{prefix}reserved")})
        if self.value() == "ok":
            return queryset.exclude(**low)
        return queryset


class RestockForm(forms.Form):
    quantity = forms.IntegerField(min_value=1, max_value=services.MAX_QUANTITY, initial=10)
    note = forms.CharField(max_length=500, required=False, initial="admin restock")


def _restock_action(modeladmin, request, queryset, product_of):
    """Ask for N, then restock each selected SKU through the service (ledger row + events)."""
    form = RestockForm(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        done = 0
        for obj in queryset:
            product = product_of(obj)
            try:
                services.restock(
                    store=product.store,
                    sku=product.sku,
                    quantity=form.cleaned_data["quantity"],
                    note=form.cleaned_data["note"],
                    actor=request.user.get_username(),
                )
                done += 1
            except DomainError as exc:
                modeladmin.message_user(request, f"{product.sku}: {exc.message}", messages.ERROR)
        modeladmin.message_user(request, f"Restocked {done} SKU(s) by {form.cleaned_data['quantity']}.")
        return None
    return render(
        request,
        "admin/inventory/restock.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": "Restock +N",
            "form": form,
            "rows": [(o.pk, product_of(o)) for o in queryset],
            "action": request.POST.get("action"),
            "opts": modeladmin.model._meta,
        },
    )


@admin.register(Product)
class ProductAdmin(StoreScopedAdmin):
    manage_perm = Perm.MANAGE_STOCK
    list_display = ["sku", "name", "store", "price", "currency", "active", "on_hand", "reserved", "available"]
    list_filter = ["active", LowStockFilter, "store"]
    search_fields = ["sku", "name"]
    list_select_related = ["stock", "store"]
    inlines = [StockLevelInline]
    actions = ["restock_selected"]
    readonly_fields = ["created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        # SKU and store are the product's identity (orders and the ledger refer to them).
        return [*self.readonly_fields, "store", "sku"] if obj else self.readonly_fields

    def has_add_permission(self, request):
        return False  # products are created by the API / seed through the service (stock + ledger)

    def has_delete_permission(self, request, obj=None):
        return False  # the ledger and past orders point at it; deactivate instead

    @admin.display(ordering="stock__on_hand")
    def on_hand(self, obj):
        return obj.stock.on_hand

    @admin.display(ordering="stock__reserved")
    def reserved(self, obj):
        return obj.stock.reserved

    @admin.display()
    def available(self, obj):
        return obj.stock.available

    @admin.action(description="Restock +N (through the stock service)", permissions=["manage_stock"])
    def restock_selected(self, request, queryset):
        return _restock_action(self, request, queryset.select_related("store"), lambda p: p)


@admin.register(StockLevel)
class StockLevelAdmin(StoreScopedAdmin):
    manage_perm = Perm.MANAGE_STOCK
    list_display = [
        "sku",
        "name",
        "store",
        "on_hand",
        "reserved",
        "available",
        "low_stock_threshold",
        "is_low",
    ]
    list_filter = [LowStockFilter, "store"]
    search_fields = ["product__sku", "product__name"]
    list_select_related = ["product", "store"]
    fields = [
        "product",
        "on_hand",
        "reserved",
        "low_stock_threshold",
        "threshold_reached_at",
        "forecast_alerted_at",
    ]
    readonly_fields = ["product", "on_hand", "reserved", "threshold_reached_at", "forecast_alerted_at"]
    actions = ["restock_selected"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        """The threshold is the one editable field; go through the service so a crossing it causes
        is reported like any other."""
        if "low_stock_threshold" in form.changed_data:
            services.update_product(
                store=obj.store,
                sku=obj.product.sku,
                actor=request.user.get_username(),
                low_stock_threshold=obj.low_stock_threshold,
            )

    @admin.display(ordering="product__sku")
    def sku(self, obj):
        return obj.product.sku

    @admin.display(ordering="product__name")
    def name(self, obj):
        return obj.product.name

    @admin.display()
    def available(self, obj):
        return obj.available

    @admin.display(boolean=True)
    def is_low(self, obj):
        return obj.is_low

    @admin.action(description="Restock +N (through the stock service)", permissions=["manage_stock"])
    def restock_selected(self, request, queryset):
        return _restock_action(
            self, request, queryset.select_related("product", "product__store"), lambda lv: lv.product
        )


@admin.register(StockMovement)
class StockMovementAdmin(StoreScopedAdmin):
    """The ledger: append-only, so read-only here."""

    list_display = ["id", "created_at", "store", "sku", "kind", "quantity", "on_hand_delta", "reserved_delta", "order_id", "actor", "note"]  # fmt: skip  # noqa: E501
    list_filter = ["kind", "store"]
    search_fields = ["product__sku", "order_id", "actor", "note"]
    list_select_related = ["product", "store"]
    readonly_fields = [f.name for f in StockMovement._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(ordering="product__sku")
    def sku(self, obj):
        return obj.product.sku
