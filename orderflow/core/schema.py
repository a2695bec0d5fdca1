"""The OpenAPI description: the store credentials, and the schema class every view uses."""

import re
from functools import cache

from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers


class StoreAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "orderflow.core.tenancy.StoreAuthentication"
    name = ["storeKey", "storeId"]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "description": "A store API key (`manage.py create_api_key`).",
            },
            {"type": "apiKey", "in": "header", "name": "X-Store-ID", "description": "The store's slug."},
        ]


# ------------------------------------------------------------------------------------------------
# The schema class of every view (REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]): resource tags, operation
# ids taken from the URL names, and the error answers each operation can give — derived here once,
# from what the view is (authenticated, throttled, takes a body, has a path parameter, paginates),
# so a new endpoint is described right without decorating it.

# Tags by app; where one app serves two resources, its path's first segment names the resource.
_TAG_BY_SEGMENT = {"webhooks": "webhooks", "keys": "keys", "store": "store"}
_TAG_BY_APP = {
    "orders": "orders",
    "payments": "payments",
    "inventory": "inventory",
    "fulfillment": "fulfillment",
    "alerts": "alerts",
    "dashboard": "dashboard",
    "orderflow": "store",
}
_VERBS = {
    ("list", "GET"): "list",
    ("list", "POST"): "create",
    ("detail", "GET"): "retrieve",
    ("detail", "PUT"): "update",
    ("detail", "PATCH"): "partial_update",
    ("detail", "DELETE"): "destroy",
}
_METHOD_VERBS = {"GET": "retrieve", "POST": "create", "PUT": "update", "PATCH": "partial_update",
                 "DELETE": "destroy"}  # fmt: skip

_ERROR_TEXT = {
    400: "The request is invalid (`validation_error` with `fields`, `malformed_json`, `store_required`, "
    "a bad page or cursor).",
    401: "No credential, or an unknown or revoked one (`not_authenticated`; `WWW-Authenticate: Bearer`).",
    403: "The credential may not do this for that store (`forbidden`).",
    404: "No such resource, or no such store (`not_found`, `store_not_found`).",
    409: "The request conflicts with the current state (`invalid_transition`, `insufficient_stock`, ...).",
    413: "The body is larger than the server accepts (`payload_too_large`).",
    415: "The body is not `application/json` (`unsupported_media_type`).",
    422: "The idempotency key was used with a different body.",
    429: "Too many requests (`rate_limited`; `Retry-After` says when to retry).",
}


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, machine-readable: `validation_error`, `not_found`, ...")
    message = serializers.CharField(help_text="For a human; may change.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text='What is wrong where, by JSON path: `{"items[0].quantity": ["..."]}`.',
    )


class ErrorSerializer(serializers.Serializer):
    """Every error answer of the API: `{"error": {"code", "message", "fields"?}}`."""

    error = ErrorDetailSerializer()

    class Meta:
        ref_name = "Error"


@cache
def _url_names() -> dict[str, str]:
    """path_regex → URL name, walked the way DRF's endpoint enumerator builds path_regex."""
    names: dict[str, str] = {}

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            regex = prefix + str(pattern.pattern)
            if isinstance(pattern, URLPattern) and pattern.name:
                names.setdefault(regex, pattern.name)
            elif isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, regex)

    walk(get_resolver().url_patterns, "")
    return names


class OrderFlowAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema with the conventions above.

    A view may name the error statuses its operations answer beyond the derived ones with
    `error_statuses = (409, 422)` (or a dict by method: `{"POST": (422,)}`)."""

    def _segments(self) -> list[str]:
        path = re.sub(r"^/api/v\d+/", "", self.path)
        return [s for s in path.strip("/").split("/") if s and not s.startswith("{")]

    def get_tags(self) -> list[str]:
        segments = self._segments()
        if segments and segments[0] in _TAG_BY_SEGMENT:
            return [_TAG_BY_SEGMENT[segments[0]]]
        app = type(self.view).__module__.split(".")[0]
        return [_TAG_BY_APP.get(app, segments[0] if segments else app)]

    def get_operation_id(self) -> str:
        """The URL name, its resource word written as the path's first segment (orders, not
        order; keys, not api-key), and the verb: `orders_list`, `orders_create`,
        `orders_retrieve`, `orders_cancel`, `keys_revoke`."""
        name = _url_names().get(self.path_regex)
        if not name:
            return super().get_operation_id()
        words = name.split("-")
        verb = None
        if words[-1] in ("list", "detail") and len(words) > 1:
            verb = _VERBS.get((words[-1], self.method))
            words = words[:-1]
        elif len(self._methods()) > 1:
            verb = _METHOD_VERBS.get(self.method)
        segments = self._segments()
        for i, word in enumerate(words):  # "api-key-list" on /keys → keys_list
            if segments and segments[0].startswith(word):
                words = [segments[0], *words[i + 1 :]]
                break
        return "_".join(w.replace("-", "_") for w in [*words, verb] if w)

    def _methods(self) -> set[str]:
        allowed = {m.upper() for m in getattr(self.view, "http_method_names", [])}
        return {
            m
            for m in ("GET", "POST", "PUT", "PATCH", "DELETE")
            if m in allowed and hasattr(self.view, m.lower())
        }

    def _error_statuses(self) -> set[int]:
        view = self.view
        codes: set[int] = set()
        if self.get_auth():  # the tenancy middleware's answers, before the view runs
            codes |= {400, 401, 403, 404}
        if self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None:
            codes |= {400, 413, 415}
        if self.get_auth() and self.method in ("POST", "PUT", "PATCH", "DELETE"):
            codes.add(409)  # a state change can meet a state that forbids it
        if "{" in self.path:
            codes.add(404)
        if self.method == "GET" and self._is_list_view() and getattr(view, "pagination_class", None):
            codes |= {400, 404}  # a page or cursor that does not exist
        if getattr(view, "throttle_classes", None):
            codes.add(429)
        declared = getattr(view, "error_statuses", ())
        if isinstance(declared, dict):
            declared = declared.get(self.method, ())
        codes.update(declared)
        return codes

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        error = self.resolve_serializer(ErrorSerializer, "response").ref
        codes = self._error_statuses() | {int(c) for c in responses if c.isdigit() and int(c) >= 400}
        for code in sorted(codes):
            existing = responses.get(str(code), {})
            responses[str(code)] = {
                "content": {"application/json": {"schema": error}},
                "description": _ERROR_TEXT.get(code) or existing.get("description") or "Error.",
            }
        return responses
