"""Catalogue and stock endpoints (contract: Inventory). Thin: parse → selector/service → render.

Input is checked strictly: JSON booleans must be booleans, integers integers (no "5", 5.0 or
true), strings strings; unknown fields are refused, so a client that thinks it can PATCH
`on_hand` learns that stock only moves through restock/adjust.
"""

from __future__ import annotations

from django.http import QueryDict
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from orderflow.core.errors import ValidationFailed
from orderflow.core.permissions import Perm
from orderflow.core.tenancy import actor_name

from . import selectors, services
from .filters import MovementFilter, ProductFilter, StockLevelFilter
from .models import Product, StockLevel, StockMovement

MAX_QUANTITY = services.MAX_QUANTITY


# ------------------------------------------------------------------------- strict fields


def _is_form(field: serializers.Field) -> bool:
    root = field.root
    return isinstance(getattr(root, "initial_data", None), QueryDict)


class StrictIntegerField(serializers.IntegerField):
    """JSON integers only; form posts (browsable API) may send digit strings."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, str) and _is_form(self):
            data = data.strip()
            if not data.lstrip("-").isdigit():
                self.fail("invalid")
            return super().to_internal_value(int(data))
        if not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        if _is_form(self):
            return super().to_internal_value(data)
        self.fail("invalid")


class StrictCharField(serializers.CharField):
    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field(OpenApiTypes.STR)
class StrictDecimalField(serializers.DecimalField):
    """A decimal string ("19.90"); JSON numbers are accepted too, booleans are not."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know (browsable-API form housekeeping aside)."""

    def validate(self, attrs):
        data = self.initial_data
        if hasattr(data, "keys"):
            unknown = [
                k
                for k in data.keys()
                if k not in self.fields and not k.startswith(("_", "csrfmiddlewaretoken"))
            ]
            if unknown:
                raise serializers.ValidationError({k: ["Unknown field."] for k in unknown})
        return attrs


def _validated(serializer_class, request, **kw) -> dict:
    if not isinstance(request.data, (dict, QueryDict)):
        raise ValidationFailed("The body must be a JSON object.", fields={"$": ["Expected a JSON object."]})
    s = serializer_class(data=request.data, **kw)
    s.is_valid(raise_exception=True)
    return s.validated_data


# ----------------------------------------------------------------------------- products


class ProductSerializer(serializers.Serializer):
    """A product as the API shows it, with its stock."""

    sku = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    price = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    active = serializers.BooleanField()
    on_hand = serializers.IntegerField(source="stock.on_hand")
    reserved = serializers.IntegerField(source="stock.reserved")
    available = serializers.IntegerField(source="stock.available")
    low_stock_threshold = serializers.IntegerField(source="stock.low_stock_threshold")
    is_low = serializers.BooleanField(source="stock.is_low")
    lead_time_days = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ProductCreateSerializer(StrictSerializer):
    sku = StrictCharField(max_length=64)
    name = StrictCharField(max_length=200)
    description = StrictCharField(required=False, allow_blank=True, default="", max_length=10_000)
    price = StrictDecimalField(max_digits=12, decimal_places=2, min_value=0)
    currency = StrictCharField(required=False, min_length=3, max_length=3)
    active = StrictBooleanField(required=False, default=True)
    initial_stock = StrictIntegerField(required=False, default=0, min_value=0, max_value=MAX_QUANTITY)
    low_stock_threshold = StrictIntegerField(required=False, default=10, min_value=0, max_value=MAX_QUANTITY)
    lead_time_days = StrictIntegerField(
        required=False, allow_null=True, default=None, min_value=0, max_value=3650
    )


class ProductPatchSerializer(StrictSerializer):
    name = StrictCharField(required=False, max_length=200)
    description = StrictCharField(required=False, allow_blank=True, max_length=10_000)
    price = StrictDecimalField(required=False, max_digits=12, decimal_places=2, min_value=0)
    active = StrictBooleanField(required=False)
    low_stock_threshold = StrictIntegerField(required=False, min_value=0, max_value=MAX_QUANTITY)
    lead_time_days = StrictIntegerField(required=False, allow_null=True, min_value=0, max_value=3650)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if not attrs:
            raise serializers.ValidationError("Give at least one field to change.")
        return attrs


@extend_schema(tags=["inventory"])
class ProductListView(generics.ListCreateAPIView):
    """The store's catalogue; POST adds a product with its initial stock (catalogue sync)."""

    serializer_class = ProductSerializer
    write_perm = Perm.MANAGE_STOCK
    filter_backends = [DjangoFilterBackend]
    filterset_class = ProductFilter

    def get_serializer_class(self):
        # The browsable API's form shows what POST accepts, not what GET returns.
        return ProductCreateSerializer if self.request.method == "POST" else ProductSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Product.all_stores.none()
        return selectors.products(self.request.store)

    @extend_schema(request=ProductCreateSerializer, responses={201: ProductSerializer})
    def post(self, request, *args, **kwargs):
        data = _validated(ProductCreateSerializer, request)
        product = services.create_product(store=request.store, actor=actor_name(request), **data)
        headers = {"Location": f"/api/v1/products/{product.sku}"}
        return Response(ProductSerializer(product).data, status=status.HTTP_201_CREATED, headers=headers)


@extend_schema(tags=["inventory"])
class ProductDetailView(generics.GenericAPIView):
    """One product; PATCH changes name, description, price, active, threshold, lead time."""

    serializer_class = ProductSerializer
    write_perm = Perm.MANAGE_STOCK
    filter_backends = [DjangoFilterBackend]
    filterset_class = ProductFilter

    def get_serializer_class(self):
        return ProductPatchSerializer if self.request.method == "PATCH" else ProductSerializer

    def get_object(self):
        return selectors.product_by_sku(self.request.store, self.kwargs["sku"])

    def get(self, request, sku: str):
        return Response(ProductSerializer(self.get_object()).data)

    @extend_schema(request=ProductPatchSerializer, responses=ProductSerializer)
    def patch(self, request, sku: str):
        selectors.product_by_sku(request.store, sku)  # unknown SKU → 404 before judging the body
        data = _validated(ProductPatchSerializer, request)
        product = services.update_product(store=request.store, sku=sku, actor=actor_name(request), **data)
        return Response(ProductSerializer(product).data)


# ------------------------------------------------------------------------------ inventory


class StockLevelSerializer(serializers.Serializer):
    sku = serializers.CharField(source="product.sku")
    name = serializers.CharField(source="product.name")
    on_hand = serializers.IntegerField()
    reserved = serializers.IntegerField()
    available = serializers.IntegerField()
    low_stock_threshold = serializers.IntegerField()
    is_low = serializers.BooleanField()
    days_of_cover = serializers.SerializerMethodField()
    lead_time_days = serializers.IntegerField(source="product.lead_time_days", allow_null=True)
    updated_at = serializers.DateTimeField()

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_days_of_cover(self, obj) -> float | None:
        value = getattr(obj, "days_of_cover", None)
        return None if value is None else round(value, 1)


@extend_schema(tags=["inventory"])
class InventoryListView(generics.ListAPIView):
    """Stock per SKU, with availability, low-stock flag and days of cover."""

    serializer_class = StockLevelSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = StockLevelFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return StockLevel.all_stores.none()
        return selectors.stock_levels(self.request.store)


class RestockSerializer(StrictSerializer):
    quantity = StrictIntegerField(min_value=1, max_value=MAX_QUANTITY)
    note = StrictCharField(required=False, allow_blank=True, default="", max_length=500)


class NonZeroIntegerField(StrictIntegerField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value == 0:
            raise serializers.ValidationError("Must not be zero.")
        return value


class AdjustSerializer(StrictSerializer):
    delta = NonZeroIntegerField(min_value=-MAX_QUANTITY, max_value=MAX_QUANTITY)
    reason = StrictCharField(max_length=500)


def _level_response(store, sku: str) -> Response:
    return Response(StockLevelSerializer(selectors.stock_level(store, sku)).data)


@extend_schema(tags=["inventory"])
class RestockView(generics.GenericAPIView):
    """Goods arrived: on_hand grows by `quantity` (1..1,000,000), with a ledger row."""

    serializer_class = RestockSerializer
    write_perm = Perm.MANAGE_STOCK

    @extend_schema(request=RestockSerializer, responses=StockLevelSerializer)
    def post(self, request, sku: str):
        selectors.product_by_sku(request.store, sku)
        data = _validated(RestockSerializer, request)
        services.restock(store=request.store, sku=sku, actor=actor_name(request), **data)
        return _level_response(request.store, sku)


@extend_schema(tags=["inventory"])
class AdjustView(generics.GenericAPIView):
    """A count correction: on_hand moves by `delta`, never below what is reserved (409)."""

    serializer_class = AdjustSerializer
    write_perm = Perm.MANAGE_STOCK

    @extend_schema(request=AdjustSerializer, responses=StockLevelSerializer)
    def post(self, request, sku: str):
        selectors.product_by_sku(request.store, sku)
        data = _validated(AdjustSerializer, request)
        services.adjust(store=request.store, sku=sku, actor=actor_name(request), **data)
        return _level_response(request.store, sku)


class MovementSerializer(serializers.ModelSerializer):
    sku = serializers.CharField(source="product.sku")

    class Meta:
        model = StockMovement
        fields = [
            "id",
            "sku",
            "kind",
            "quantity",
            "on_hand_delta",
            "reserved_delta",
            "order_id",
            "actor",
            "note",
            "created_at",
        ]


@extend_schema(tags=["inventory"])
class MovementListView(generics.ListAPIView):
    """The SKU's stock ledger, newest first, each row with its order or its user."""

    serializer_class = MovementSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = MovementFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return StockMovement.all_stores.none()
        return selectors.movements(self.request.store, self.kwargs["sku"]).select_related("product")
