"""Core endpoints: the API root, the store the credentials act for and its settings, and the
store's API keys."""

from urllib.parse import urlencode

from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from . import services
from .errors import ValidationFailed
from .permissions import Perm
from .store_settings import (
    SETTING_NAMES,
    StoreSettingsSerializer,
    store_settings,
    update_store_settings,
    validate_store_settings,
)
from .tenancy import ApiKey, actor_name
from .throttles import PublicThrottle

ERROR = OpenApiResponse(description="Error: `{error: {code, message, fields?}}`.")

API_PREFIX = "api/v1/"


def api_resources() -> list[str]:
    """The routes under /api/v1/ that take no argument — the lists and singletons — read from the
    URLconf, so a new app's list appears here without an edit (and core imports no app)."""
    routes: list[str] = []
    for entry in get_resolver().url_patterns:
        if not (isinstance(entry, URLResolver) and str(entry.pattern) == API_PREFIX):
            continue
        for pattern in entry.url_patterns:
            route = str(pattern.pattern)
            if isinstance(pattern, URLPattern) and route and not pattern.pattern.converters:
                if route not in routes:
                    routes.append(route)
    return routes


class ApiRootView(APIView):
    """`GET /api/v1/` — the resources, as links (the browsable API's front door). Needs no
    credential and no store: it lists addresses, not data. A `?store=` given here is carried on
    every link, so a signed-in member can click on through."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [PublicThrottle]

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, auth=[])
    def get(self, request):
        store = request.query_params.get("store", "").strip()
        suffix = f"?{urlencode({'store': store})}" if store else ""
        base = request.build_absolute_uri(f"/{API_PREFIX}")
        return Response({route: f"{base}{route}{suffix}" for route in api_resources()})


class StoreSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    currency = serializers.CharField()
    settings = StoreSettingsSerializer(help_text="The effective settings: the store's own over the defaults.")


def _store_body(store) -> dict:
    return {
        "slug": store.slug,
        "name": store.name,
        "currency": store.currency,
        "settings": store_settings(store),
    }


class CurrentStoreView(APIView):
    """`GET /api/v1/store` — who am I acting for, and its settings. Touches no tenant table (the
    settings are on the store row the middleware loaded): the baseline for measuring what the rest
    of a request costs on top of middleware and authentication.

    `PATCH /api/v1/store` — an owner (or a full key) changes settings; `null` restores a default."""

    parser_classes = [JSONParser]
    write_perm = Perm.MANAGE_STORE

    @extend_schema(responses=StoreSerializer)
    def get(self, request):
        return Response(_store_body(request.store))

    @extend_schema(
        request=StoreSettingsSerializer, responses={200: StoreSerializer, 400: ERROR, 403: ERROR, 415: ERROR}
    )
    def patch(self, request):
        data = request.data
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(SETTING_NAMES))
            if unknown:  # a misspelt setting must not look applied
                raise ValidationFailed(fields={name: ["Unknown setting."] for name in unknown})
        changes = validate_store_settings(request.store, data)
        store = update_store_settings(store=request.store, actor=actor_name(request), changes=changes)
        return Response(_store_body(store))


class ApiKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = ["prefix", "name", "scope", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scope = serializers.ChoiceField(choices=ApiKey.Scope.choices)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The key itself: shown only in this response.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class ApiKeyListView(APIView):
    """`GET /api/v1/keys` — the store's keys (never the secret); `POST` makes one, shown once.
    An owner signed in (or platform staff) only: a key never lists or mints keys."""

    parser_classes = [JSONParser]
    read_perm = write_perm = Perm.MANAGE_KEYS

    @extend_schema(responses=ApiKeySerializer(many=True))
    def get(self, request):
        return Response(ApiKeySerializer(services.api_keys(request.store), many=True).data)

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer, 400: ERROR})
    def post(self, request):
        body = ApiKeyCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        key, raw = services.issue_api_key(
            store=request.store, actor=actor_name(request), **body.validated_data
        )
        data = ApiKeySerializer(key).data
        data["key"] = raw
        return Response(data, status=status.HTTP_201_CREATED)


class ApiKeyRevokeView(APIView):
    """`POST /api/v1/keys/<prefix>/revoke` — the key stops working at once; again → 200 no-op."""

    write_perm = Perm.MANAGE_KEYS

    @extend_schema(request=None, responses={200: ApiKeySerializer, 404: ERROR})
    def post(self, request, prefix: str):
        key = services.revoke_store_key(store=request.store, prefix=prefix, actor=actor_name(request))
        return Response(ApiKeySerializer(key).data)
