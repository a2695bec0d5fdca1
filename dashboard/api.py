"""/api/v1/dashboard/* — the stats the overview page and any external monitor read."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors


class _PeriodCounts(serializers.Serializer):
    today = serializers.IntegerField()
    last_hour = serializers.IntegerField()
    last_7_days = serializers.IntegerField()


class _PeriodMoney(serializers.Serializer):
    today = serializers.DecimalField(max_digits=14, decimal_places=2)
    last_hour = serializers.DecimalField(max_digits=14, decimal_places=2)
    last_7_days = serializers.DecimalField(max_digits=14, decimal_places=2)


class _LowStock(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    on_hand = serializers.IntegerField()
    reserved = serializers.IntegerField()
    available = serializers.IntegerField()
    low_stock_threshold = serializers.IntegerField()


class _RecentOrder(serializers.Serializer):
    id = serializers.UUIDField()
    number = serializers.IntegerField()
    status = serializers.CharField()
    payment_status = serializers.CharField()
    fulfillment_status = serializers.CharField()
    customer_email = serializers.EmailField()
    total = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    created_at = serializers.DateTimeField()


class StatsSerializer(serializers.Serializer):
    """Documents the stats shape (the view returns the selector's dict as is)."""

    store = serializers.CharField()
    currency = serializers.CharField()
    generated_at = serializers.DateTimeField()
    orders_by_status = serializers.DictField(child=serializers.IntegerField())
    orders = _PeriodCounts()
    revenue = _PeriodMoney()
    payment_success_rate = serializers.FloatField(
        allow_null=True, help_text="Succeeded / (succeeded + failed) over 7 days; null when none."
    )
    fulfillment_rate = serializers.FloatField(
        allow_null=True, help_text="Shipped / paid over 7 days; null when none."
    )
    orders_retrying_payment = serializers.IntegerField()
    median_accept_to_paid_seconds = serializers.FloatField(allow_null=True)
    median_paid_to_shipped_seconds = serializers.FloatField(allow_null=True)
    low_stock_skus = _LowStock(many=True)
    open_alerts_by_severity = serializers.DictField(child=serializers.IntegerField())
    idempotent_replays_today = serializers.IntegerField()
    recent_orders = _RecentOrder(many=True)


class StatsView(APIView):
    """`GET /api/v1/dashboard/stats` — the store's figures at a glance (a few aggregate queries)."""

    @extend_schema(responses=StatsSerializer)
    def get(self, request):
        return Response(selectors.stats(request.store))
