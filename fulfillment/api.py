"""Fulfillment API: the warehouse's list and steps, and the carriers' signed webhook.

Views are thin: parse → selector/service → render. Every fulfillment id is looked up within
`request.store` (another store's id is 404)."""

from __future__ import annotations

from django.conf import settings
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import generics, serializers
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from orderflow.core.errors import DomainError, NotFound
from orderflow.core.permissions import Perm
from orderflow.core.tenancy import actor_name
from orderflow.core.throttles import CarrierThrottle

from . import delivery, selectors, services
from .filters import FulfillmentFilter
from .models import Fulfillment, FulfillmentLine, Shipment

# ------------------------------------------------------------------------------ serializers


class FulfillmentLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = FulfillmentLine
        fields = ["sku", "name", "quantity", "picked"]


class FulfillmentShipmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Shipment
        fields = [
            "id",
            "carrier",
            "tracking_number",
            "status",
            "label_created_at",
            "estimated_delivery",
            "last_event_at",
            "delivered_at",
        ]


class FulfillmentSerializer(serializers.ModelSerializer):
    order_id = serializers.UUIDField(read_only=True)
    order_number = serializers.IntegerField(source="order.number", read_only=True)
    packages = serializers.IntegerField(source="package_count", read_only=True, allow_null=True)
    lines = FulfillmentLineSerializer(many=True, read_only=True)
    shipment = serializers.SerializerMethodField()

    class Meta:
        model = Fulfillment
        fields = [
            "id",
            "order_id",
            "order_number",
            "status",
            "lines",
            "packages",
            "weight_grams",
            "picked_by",
            "picked_at",
            "packed_by",
            "packed_at",
            "ready_by",
            "ready_at",
            "shipped_by",
            "shipped_at",
            "cancelled_by",
            "cancelled_at",
            "shipment",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(FulfillmentShipmentSerializer(allow_null=True))
    def get_shipment(self, obj: Fulfillment):
        shipment = Shipment.all_stores.filter(store=obj.store_id, fulfillment=obj).first()
        return FulfillmentShipmentSerializer(shipment).data if shipment is not None else None


class FulfillmentPickLineSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    picked = serializers.IntegerField(min_value=0, max_value=1000)


class FulfillmentPickSerializer(serializers.Serializer):
    lines = FulfillmentPickLineSerializer(many=True, required=False, allow_empty=False, max_length=100)


class FulfillmentPackSerializer(serializers.Serializer):
    packages = serializers.IntegerField(min_value=1, max_value=1000)
    weight_grams = serializers.IntegerField(min_value=1, max_value=10_000_000)


class FulfillmentNoBodySerializer(serializers.Serializer):
    pass


class FulfillmentShipSerializer(serializers.Serializer):
    carrier = serializers.CharField(max_length=32, help_text="A configured carrier, e.g. `dhl` or `ups`.")


class CarrierUpdateSerializer(serializers.Serializer):
    tracking_number = serializers.CharField(max_length=40)
    status = serializers.ChoiceField(
        choices=[
            Shipment.Status.IN_TRANSIT,
            Shipment.Status.OUT_FOR_DELIVERY,
            Shipment.Status.DELIVERED,
            Shipment.Status.EXCEPTION,
            Shipment.Status.RETURNED,
        ]
    )
    occurred_at = serializers.DateTimeField()
    event_id = serializers.CharField(max_length=100)


CarrierUpdateResultSerializer = inline_serializer(
    "CarrierUpdateResult",
    {
        "status": serializers.ChoiceField(choices=["applied", "ignored"]),
        "reason": serializers.CharField(),
        "tracking_number": serializers.CharField(),
        "shipment_status": serializers.CharField(),
    },
)


# ------------------------------------------------------------------------------------ views


def _indexed_as_lists(errors):
    """DRF 3.18 reports a nested list's errors as {index: error}; turn those back into lists so
    the error handler renders JSON paths as `lines[0].picked` (the contract's shape), not
    `lines.0.picked`."""
    if isinstance(errors, dict):
        if errors and all(isinstance(k, int) for k in errors):
            out = [{} for _ in range(max(errors) + 1)]
            for k, v in errors.items():
                out[k] = _indexed_as_lists(v)
            return out
        return {k: _indexed_as_lists(v) for k, v in errors.items()}
    return errors


class FulfillmentListView(generics.ListAPIView):
    """`GET /api/v1/fulfillments` — newest first; filter `status`."""

    serializer_class = FulfillmentSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = FulfillmentFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Fulfillment.all_stores.none()
        return selectors.list_fulfillments(self.request.store)


class FulfillmentDetailView(APIView):
    """`GET /api/v1/fulfillments/<id>` — lines, packing, who/when per step, shipment."""

    serializer_class = FulfillmentSerializer

    @extend_schema(responses=FulfillmentSerializer)
    def get(self, request, pk: int):
        fulfillment = selectors.get_fulfillment(request.store, pk)
        return Response(FulfillmentSerializer(fulfillment).data)


class _StepView(generics.GenericAPIView):
    """One warehouse step: validate the body, call the service, answer with the fulfillment."""

    serializer_class = FulfillmentNoBodySerializer
    write_perm = Perm.MANAGE_FULFILLMENT
    # Each step view defines `perform(self, request, fulfillment, data)`: the service call.

    def post(self, request, pk: int):
        fulfillment = selectors.get_fulfillment(request.store, pk)
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid():
            raise serializers.ValidationError(_indexed_as_lists(serializer.errors))
        self.perform(request, fulfillment, serializer.validated_data)
        return Response(FulfillmentSerializer(selectors.get_fulfillment(request.store, pk)).data)


@extend_schema(request=FulfillmentPickSerializer, responses=FulfillmentSerializer)
class FulfillmentPickView(_StepView):
    """`POST .../pick` `{"lines": [{"sku", "picked"}]}` — `picked` is the line's total so far;
    omit `lines` to pick everything."""

    serializer_class = FulfillmentPickSerializer

    def perform(self, request, fulfillment, data):
        lines = [dict(x) for x in data["lines"]] if "lines" in data else None
        services.pick(store=request.store, fulfillment=fulfillment, lines=lines, actor=actor_name(request))


@extend_schema(request=FulfillmentPackSerializer, responses=FulfillmentSerializer)
class FulfillmentPackView(_StepView):
    """`POST .../pack` `{"packages": n, "weight_grams": n}` — every line must be fully picked."""

    serializer_class = FulfillmentPackSerializer

    def perform(self, request, fulfillment, data):
        services.pack(
            store=request.store,
            fulfillment=fulfillment,
            packages=data["packages"],
            weight_grams=data["weight_grams"],
            actor=actor_name(request),
        )


@extend_schema(request=None, responses=FulfillmentSerializer)
class FulfillmentReadyView(_StepView):
    """`POST .../ready` — packed → ready_to_ship (the order follows)."""

    def perform(self, request, fulfillment, data):
        services.mark_ready(store=request.store, fulfillment=fulfillment, actor=actor_name(request))


@extend_schema(request=FulfillmentShipSerializer, responses=FulfillmentSerializer)
class FulfillmentShipView(_StepView):
    """`POST .../ship` `{"carrier"}` — creates the shipment with its tracking number."""

    serializer_class = FulfillmentShipSerializer

    def perform(self, request, fulfillment, data):
        services.ship(
            store=request.store, fulfillment=fulfillment, carrier=data["carrier"], actor=actor_name(request)
        )


class CarrierWebhookView(APIView):
    """`POST /api/v1/carriers/<carrier>/webhook` — a carrier's status update, signed with
    `X-Carrier-Signature: sha256=<hex HMAC-SHA256 of the raw body>` under that carrier's secret.

    No store header: the tracking number finds the shipment. Replayed or out-of-order updates
    answer 200 `ignored`, so the carrier stops resending them."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [CarrierThrottle]
    parser_classes = [JSONParser]
    serializer_class = CarrierUpdateSerializer
    error_statuses = (401,)  # a missing or wrong signature (documented by the schema class)

    @extend_schema(
        request=CarrierUpdateSerializer,
        responses=CarrierUpdateResultSerializer,
        parameters=[
            OpenApiParameter(
                "X-Carrier-Signature",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description="sha256=<hex HMAC-SHA256 of the raw body with the carrier's secret>",
            )
        ],
        auth=[],
    )
    def post(self, request, carrier: str):
        if carrier not in settings.CARRIER_SECRETS:
            raise NotFound("No such carrier.", code="unknown_carrier")
        raw = request._request.body  # the exact bytes signed: read before DRF parses them
        if not delivery.signature_is_valid(carrier, raw, request.headers.get("X-Carrier-Signature")):
            raise DomainError(
                "The carrier signature is missing or wrong.", code="invalid_signature", status=401
            )
        serializer = CarrierUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = delivery.apply_carrier_update(
            carrier=carrier,
            event_id=data["event_id"],
            tracking_number=data["tracking_number"],
            status=data["status"],
            occurred_at=data["occurred_at"],
        )
        return Response(
            {
                "status": result.status,
                "reason": result.reason,
                "tracking_number": result.shipment.tracking_number,
                "shipment_status": result.shipment.status,
            }
        )
