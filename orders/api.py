"""Order intake and management over HTTP: serializers and thin views (parse → service/selector →
render). The representation lives in `representation.py` (place_order stores its bytes)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from django.http import HttpResponse
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.selectors import catalogue_for_skus
from orderflow.core.errors import DomainError, ValidationFailed, flatten_fields
from orderflow.core.events import Event
from orderflow.core.pagination import CursorPagination
from orderflow.core.permissions import Perm
from orderflow.core.tenancy import actor_name
from orderflow.core.throttles import PublicThrottle

from . import idempotency, legacy, prebuilt, selectors, services
from .cards import digits_only, luhn_valid
from .countries import ISO_3166_ALPHA2
from .filters import OrderFilter
from .models import Order
from .representation import OrderOut

# ----------------------------------------------------------------------------- input

# Intake's limits, declared here once and read by the serializers below (docs/api-contract.md
# states them for clients).
MAX_LINES = 100
MAX_QUANTITY = 1000
SKU_MAX_LENGTH = 64
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
CVC_RE = re.compile(r"^\d{3,4}$")
METADATA_MAX_KEYS = 50
METADATA_MAX_BYTES = 4096


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer and nothing else: no "2", no 2.0, no true."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class CustomerIn(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    name = serializers.CharField(min_length=1, max_length=200)

    def validate_email(self, value: str) -> str:
        return value.lower()


class ItemIn(serializers.Serializer):
    sku = serializers.CharField(max_length=SKU_MAX_LENGTH)
    quantity = StrictIntegerField(min_value=1, max_value=MAX_QUANTITY)


class AddressIn(serializers.Serializer):
    line1 = serializers.CharField(max_length=200)
    line2 = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    city = serializers.CharField(max_length=100)
    postal_code = serializers.CharField(max_length=20)
    country = serializers.CharField(max_length=2, help_text="ISO 3166-1 alpha-2, like DE.")

    def validate_country(self, value: str) -> str:
        code = value.upper()
        if code not in ISO_3166_ALPHA2:
            raise serializers.ValidationError("Not an ISO 3166-1 alpha-2 country code.")
        return code


class PaymentIn(serializers.Serializer):
    """Checked, then reduced to brand + last four by the service; never stored or logged."""

    card_number = serializers.CharField(max_length=40)
    exp_month = StrictIntegerField(min_value=1, max_value=12)
    exp_year = StrictIntegerField(min_value=2000, max_value=2100)
    cvc = serializers.CharField(max_length=4)

    def validate_card_number(self, value: str) -> str:
        number = digits_only(value)
        if not number.isdigit() or not 12 <= len(number) <= 19:
            raise serializers.ValidationError("A card number has 12 to 19 digits.")
        if not luhn_valid(number):
            raise serializers.ValidationError("This is not a valid card number.")
        return number

    def validate_exp_year(self, value: int) -> int:
        if value < timezone.now().year:
            raise serializers.ValidationError("The card has expired.")
        return value

    def validate_cvc(self, value: str) -> str:
        if not CVC_RE.match(value):
            raise serializers.ValidationError("3 or 4 digits.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        now = timezone.now()
        month, year = attrs.get("exp_month"), attrs.get("exp_year")
        if month is not None and year == now.year and month < now.month:
            raise serializers.ValidationError({"exp_month": ["The card has expired."]})
        return attrs


class OrderCreateSerializer(serializers.Serializer):
    """`POST /api/v1/orders`. Every rule is checked and all problems are reported together; the
    catalogue rules (known, active SKU; the store's currency) are checked by `place_order`."""

    customer = CustomerIn()
    items = ItemIn(many=True, allow_empty=False, max_length=MAX_LINES)
    shipping_address = AddressIn()
    payment = PaymentIn()
    currency = serializers.CharField(required=False, help_text="Defaults to the store's currency.")
    metadata = serializers.JSONField(required=False, default=dict)

    def validate_items(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        seen: set[str] = set()
        errors: list[dict[str, list[str]]] = []
        for item in items:
            errors.append({"sku": ["This SKU appears more than once."]} if item["sku"] in seen else {})
            seen.add(item["sku"])
        if any(errors):
            raise serializers.ValidationError(errors)
        return items

    def validate_currency(self, value: str) -> str:
        if not CURRENCY_RE.match(value):
            raise serializers.ValidationError("A three-letter ISO 4217 code, like EUR.")
        store = self.context.get("store")
        if store is not None and value != store.currency:
            raise serializers.ValidationError(f"This store sells in {store.currency}.")
        return value

    def validate_metadata(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        if len(value) > METADATA_MAX_KEYS:
            raise serializers.ValidationError(f"At most {METADATA_MAX_KEYS} keys.")
        if len(json.dumps(value, default=str).encode()) > METADATA_MAX_BYTES:
            raise serializers.ValidationError(f"At most {METADATA_MAX_BYTES} bytes as JSON.")
        return value


class LegacyPaymentIn(PaymentIn):
    """The legacy format sends the card number only; expiry and CVC are optional there."""

    exp_month = StrictIntegerField(min_value=1, max_value=12, required=False)
    exp_year = StrictIntegerField(min_value=2000, max_value=2100, required=False)
    cvc = serializers.CharField(max_length=4, required=False)


class LegacyOrderInternalSerializer(OrderCreateSerializer):
    payment = LegacyPaymentIn()


class LegacyOrderSerializer(serializers.Serializer):
    """The flat legacy body (for the schema and the browsable API's form)."""

    email = serializers.EmailField()
    name = serializers.CharField()
    sku = serializers.ListField(child=serializers.CharField(), required=False)
    qty = serializers.ListField(child=serializers.IntegerField(), required=False)
    items = serializers.CharField(required=False, help_text='"SKU:QTY,SKU:QTY" instead of sku/qty.')
    card = serializers.CharField()
    address = serializers.CharField()
    city = serializers.CharField()
    zip = serializers.CharField()
    country = serializers.CharField()
    order_ref = serializers.CharField(required=False, help_text="The idempotency key when no header is sent.")


def _merge(into: dict[str, list[str]], more: dict[str, list[str]]) -> dict[str, list[str]]:
    for path, messages in more.items():
        bucket = into.setdefault(path, [])
        bucket.extend(m for m in messages if m not in bucket)
    return into


def _catalogue_precheck(store, data: Any) -> dict[str, list[str]]:
    """On the error path only: also report unknown/inactive SKUs, so a body with several problems
    hears about all of them at once. (The happy path checks the catalogue inside place_order.)"""
    raw = data.get("items") if isinstance(data, dict) else None
    if not isinstance(raw, list) or not raw or len(raw) > MAX_LINES:
        return {}
    items = [i if isinstance(i, dict) else {} for i in raw]
    skus = [i["sku"] for i in items if isinstance(i.get("sku"), str) and 0 < len(i["sku"]) <= SKU_MAX_LENGTH]
    if not skus:
        return {}
    products = catalogue_for_skus(store, skus)
    checked = [i if isinstance(i.get("sku"), str) and len(i["sku"]) <= SKU_MAX_LENGTH else {} for i in items]
    currency = data.get("currency", store.currency)
    currency = currency if currency == store.currency else None
    return services.catalogue_errors(store, checked, currency, products)


def _client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _idempotent_response(request, stored: idempotency.StoredResponse):
    """The stored bytes exactly (a replay adds `Idempotent-Replayed: true`); the browsable API
    gets the same data rendered as its HTML page."""
    extra = {"Idempotent-Replayed": "true"} if stored.replayed else {}
    if getattr(request, "accepted_renderer", None) is not None and request.accepted_renderer.format == "api":
        return Response(
            json.loads(stored.body),
            status=stored.status,
            headers={"Location": stored.headers.get("Location", ""), **extra},
        )
    response = HttpResponse(
        stored.body, status=stored.status, content_type=stored.headers.get("Content-Type", "application/json")
    )
    for name, value in stored.headers.items():
        if name.lower() != "content-type":
            response[name] = value
    for name, value in extra.items():
        response[name] = value
    return response


def submit(request, data: Any, key: str, fingerprint: str, serializer_class=OrderCreateSerializer):
    """Validate everything and hand the order to the one intake service, whose idempotency claim
    answers a key already used (replay, 422, 409) before it looks at the catalogue — so a finished
    key's answer stands even if the catalogue changed since. A body that no longer validates is
    checked against the key too, so a used key still gets its replay or its 422, not a 400.

    A valid body is validated by the serializer's prebuilt instance (`prebuilt.validated`: the
    same fields and rules, not rebuilt per request); the store's currency is the one rule that
    needs the request, so a body naming another currency, like any invalid one, goes to a fresh
    serializer with the store in its context, which words every error."""
    payload = prebuilt.validated(serializer_class, data)
    if payload is None or payload.get("currency", request.store.currency) != request.store.currency:
        serializer = serializer_class(data=data, context={"store": request.store})
        if not serializer.is_valid():
            stored = idempotency.existing_response(
                store=request.store, key=key, request_fingerprint=fingerprint
            )
            if stored is not None:
                return _idempotent_response(request, stored)
            fields = flatten_fields(serializer.errors)
            _merge(fields, _catalogue_precheck(request.store, data))
            raise ValidationFailed(fields=fields)
        payload = serializer.validated_data
    order = services.place_order(
        store=request.store,
        payload=payload,
        idempotency_key=key,
        request_fingerprint=fingerprint,
        actor=actor_name(request),
        client_ip=_client_ip(request),
    )
    request._request.log_order_id = str(order.pk) if order.pk else "-"
    return _idempotent_response(request, order.idempotent_response)


# ----------------------------------------------------------------------------- output


class CancelIn(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class EventOut(serializers.ModelSerializer):
    class Meta:
        model = Event
        fields = ["id", "topic", "data", "actor", "subject_type", "subject_id", "created_at"]


class TimelineStepOut(serializers.Serializer):
    step = serializers.CharField()
    label = serializers.CharField()
    at = serializers.DateTimeField()


class ShipmentOut(serializers.Serializer):
    carrier = serializers.CharField(allow_null=True)
    tracking_number = serializers.CharField(allow_null=True)
    status = serializers.CharField(allow_null=True)
    estimated_delivery = serializers.CharField(allow_null=True)


class TrackingItemOut(serializers.Serializer):
    name = serializers.CharField()
    quantity = serializers.IntegerField()


class TrackingOut(serializers.Serializer):
    order_id = serializers.UUIDField(required=False)
    number = serializers.IntegerField()
    status = serializers.CharField()
    status_label = serializers.CharField()
    fulfillment_status = serializers.CharField()
    placed_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    customer = serializers.DictField()
    shipping = serializers.DictField()
    items = TrackingItemOut(many=True)
    timeline = TimelineStepOut(many=True)
    shipment = ShipmentOut(allow_null=True)


# ------------------------------------------------------------------------------ views

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description="1–255 printable characters; the same key and body replays the first response.",
)

ERROR = OpenApiResponse(description="Error: `{error: {code, message, fields?}}`.")


class OrderListCreateView(generics.ListAPIView):
    """`GET /api/v1/orders` (newest first, filterable, paged by cursor) and `POST /api/v1/orders`
    (intake)."""

    serializer_class = OrderOut
    parser_classes = [JSONParser]
    write_perm = Perm.PLACE_ORDERS
    pagination_class = CursorPagination
    cursor_ordering = selectors.ORDER_LIST_ORDERING
    filter_backends = [DjangoFilterBackend]
    filterset_class = OrderFilter

    def get_serializer_class(self):
        if self.request is not None and self.request.method == "POST":
            return OrderCreateSerializer
        return OrderOut

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema reads the model and the filters
            return Order.all_stores.none()
        return selectors.order_list(self.request.store)

    def get_cursor_queryset(self):
        """A cursor may be any of the store's orders, also one the filters now leave out."""
        return selectors.order_list(self.request.store)

    @extend_schema(
        request=OrderCreateSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={202: OrderOut, 400: ERROR, 409: ERROR, 422: ERROR},
    )
    def post(self, request, *args, **kwargs):
        key = idempotency.parse_key(_idempotency_key(request))
        data = request.data
        return submit(request, data, key, idempotency.fingerprint(data))


def _idempotency_key(request) -> str | None:
    """The Idempotency-Key header. A signed-in operator in the browsable API, whose form cannot
    set headers, may give it as `?idempotency_key=` instead; API clients must send the header."""
    header = request.headers.get("Idempotency-Key")
    if header is None and request.auth is None and request.user.is_authenticated:
        return request.query_params.get("idempotency_key")
    return header


class OrderDetailView(APIView):
    @extend_schema(responses={200: OrderOut, 404: ERROR})
    def get(self, request, order_id: str):
        return Response(OrderOut(selectors.get_order(request.store, order_id)).data)


class OrderCancelView(generics.GenericAPIView):
    """Cancel until shipped; cancelling twice answers 200 and changes nothing."""

    serializer_class = CancelIn
    write_perm = Perm.MANAGE_ORDERS

    @extend_schema(request=CancelIn, responses={200: OrderOut, 404: ERROR, 409: ERROR})
    def post(self, request, order_id: str):
        order = selectors.get_order(request.store, order_id)
        body = CancelIn(data=request.data if isinstance(request.data, dict) else {})
        body.is_valid(raise_exception=True)
        order = services.cancel(
            store=request.store, order=order, actor=actor_name(request), reason=body.validated_data["reason"]
        )
        return Response(OrderOut(selectors.get_order(request.store, order.pk)).data)


class OrderEventsView(generics.ListAPIView):
    """The order's full domain-event log, oldest first, paged by cursor (the event id): poll with
    `starting_after=<the last id you hold>` for what happened since."""

    serializer_class = EventOut
    pagination_class = CursorPagination
    cursor_ordering = ("id",)

    def get_queryset(self):
        order = selectors.get_order(self.request.store, self.kwargs["order_id"])
        return selectors.order_events(self.request.store, order)


class OrderTrackingView(APIView):
    @extend_schema(responses={200: TrackingOut, 404: ERROR})
    def get(self, request, order_id: str):
        order = selectors.get_order(request.store, order_id)
        return Response(TrackingOut(selectors.tracking(order, public=False)).data)


class PublicTrackingView(APIView):
    """The shopper's tracking, by unguessable token, no credentials: first name and city only."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [PublicThrottle]

    @extend_schema(responses={200: TrackingOut, 404: ERROR}, auth=[])
    def get(self, request, token: str):
        order = selectors.order_by_tracking_token(token)
        if order is None:
            raise DomainError("No order with that tracking link.", code="not_found", status=404)
        return Response(TrackingOut(selectors.tracking(order, public=True)).data)


class LegacyOrderView(APIView):
    """`POST /api/v1/legacy/orders`: the flat format (JSON or form), translated into the same
    intake; errors come back under the legacy names; `order_ref` is the key when no header."""

    parser_classes = [JSONParser, FormParser, MultiPartParser]
    write_perm = Perm.PLACE_ORDERS

    def get_serializer(self, *args, **kwargs):  # the browsable API's form
        return LegacyOrderSerializer(*args, **kwargs)

    @extend_schema(
        request={
            "application/json": LegacyOrderSerializer,
            "application/x-www-form-urlencoded": LegacyOrderSerializer,
        },
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=False,
                description="Optional here: `order_ref` is used when absent.",
            )
        ],
        responses={202: OrderOut, 400: ERROR, 409: ERROR, 422: ERROR},
    )
    def post(self, request):
        payload, errors, style = legacy.translate(request.data)
        try:
            header = request.headers.get("Idempotency-Key")
            order_ref = payload["metadata"].get("order_ref")
            if header:
                key = idempotency.parse_key(header)
            elif order_ref:
                try:
                    key = idempotency.parse_key(order_ref)
                except DomainError as exc:
                    raise ValidationFailed(fields={"order_ref": [exc.message]})
            else:  # an old checkout without a reference: no retry protection, as before
                key = f"legacy-{uuid.uuid4()}"
            if errors:
                serializer = LegacyOrderInternalSerializer(data=payload, context={"store": request.store})
                raise ValidationFailed(
                    fields={} if serializer.is_valid() else flatten_fields(serializer.errors)
                )
            return submit(
                request, payload, key, idempotency.fingerprint(payload), LegacyOrderInternalSerializer
            )
        except DomainError as exc:
            if exc.fields:
                exc.fields = legacy.legacy_fields(exc.fields, style)
            if errors:
                exc.fields = _merge(exc.fields or {}, errors)
            raise
