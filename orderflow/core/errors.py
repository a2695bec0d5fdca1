"""Domain errors and the one place that turns any API error into the contract's JSON shape.

Every error body is `{"error": {"code", "message", "fields"?}}`. Services raise `DomainError`
subclasses; views never build error bodies by hand.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import utils as db
from django.http import Http404, JsonResponse
from django.views.defaults import page_not_found, permission_denied, server_error
from rest_framework import exceptions as drf
from rest_framework.response import Response


class DomainError(Exception):
    """A business refusal with a stable code and the HTTP status that carries it."""

    code = "error"
    status = 400
    message = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        fields: dict[str, list[str]] | None = None,
        extra: dict[str, Any] | None = None,
    ):
        self.message = message or self.message
        self.code = code or self.code
        self.status = status or self.status
        self.fields = fields
        self.extra = extra or {}
        super().__init__(self.message)


class ValidationFailed(DomainError):
    code, status, message = "validation_error", 400, "The request is invalid."


class NotFound(DomainError):
    code, status, message = "not_found", 404, "Not found."


class Conflict(DomainError):
    code, status, message = "conflict", 409, "The request conflicts with the current state."


class InvalidTransition(Conflict):
    code, message = "invalid_transition", "That change is not allowed from the current state."


class InsufficientStock(Conflict):
    code, message = "insufficient_stock", "Not enough stock."


class Forbidden(DomainError):
    code, status, message = "forbidden", 403, "You may not act for this store."


class NotAuthenticated(DomainError):
    code, status, message = (
        "not_authenticated",
        401,
        "Authentication credentials were not provided or are invalid.",
    )


class StoreRequired(DomainError):
    code, status, message = "store_required", 400, "Name the store with the X-Store-ID header."


class StoreNotFound(DomainError):
    code, status, message = "store_not_found", 404, "No store with that id."


class ServiceUnavailable(DomainError):
    code, status, message = "service_unavailable", 503, "A dependency is down; try again shortly."


def error_body(code: str, message: str, fields: dict | None = None, **extra: Any) -> dict:
    err: dict[str, Any] = {"code": code, "message": message}
    if fields:
        err["fields"] = fields
    err.update(extra)
    return {"error": err}


def error_response(
    code: str, message: str, status: int, fields: dict | None = None, **extra: Any
) -> JsonResponse:
    """A plain Django JSON error, for middleware and URL handlers that run outside DRF."""
    return JsonResponse(error_body(code, message, fields, **extra), status=status)


def flatten_fields(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail → {"items[0].quantity": ["..."]} (JSON paths)."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key == "non_field_errors":
                path = prefix or "$"
            elif isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
                path = f"{prefix}[{key}]"  # DRF reports list items as {index: detail}
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            for p, msgs in flatten_fields(value, path).items():
                out.setdefault(p, []).extend(msgs)
    elif isinstance(detail, list):
        if all(not isinstance(x, (dict, list)) for x in detail):
            if detail:
                out[prefix or "$"] = [str(x) for x in detail]
        else:
            for i, value in enumerate(detail):
                if value in ({}, [], None, ""):
                    continue
                for p, msgs in flatten_fields(value, f"{prefix}[{i}]").items():
                    out.setdefault(p, []).extend(msgs)
    elif detail not in (None, ""):
        out[prefix or "$"] = [str(detail)]
    return out


_DRF_CODES: list[tuple[type, str, int]] = [
    (drf.ParseError, "malformed_json", 400),
    (drf.UnsupportedMediaType, "unsupported_media_type", 415),
    (drf.NotAuthenticated, "not_authenticated", 401),
    (drf.AuthenticationFailed, "not_authenticated", 401),
    (drf.PermissionDenied, "forbidden", 403),
    (drf.NotFound, "not_found", 404),
    (drf.MethodNotAllowed, "method_not_allowed", 405),
    (drf.NotAcceptable, "not_acceptable", 406),
    (drf.Throttled, "rate_limited", 429),
]


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every API error leaves in the contract's shape."""
    headers: dict[str, str] = {}
    if isinstance(exc, DomainError):
        body = error_body(exc.code, exc.message, exc.fields, **exc.extra)
        return Response(body, status=exc.status)
    if isinstance(exc, db.DataError):
        # A value the database refuses (a NUL byte, an out-of-range number): the input is bad,
        # and the transaction has rolled back, so nothing was written.
        return Response(error_body("invalid_value", "A value in the request cannot be stored."), status=400)
    if isinstance(exc, (db.OperationalError, db.InterfaceError)):
        return Response(
            error_body(
                "service_unavailable", "The database is unavailable; nothing was changed. Retry shortly."
            ),
            status=503,
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("payload_too_large", _too_big_message()), status=413)
    if isinstance(exc, Http404):
        return Response(error_body("not_found", "Not found."), status=404)
    if isinstance(exc, DjangoPermissionDenied):
        return Response(error_body("forbidden", "You may not do that."), status=403)
    if isinstance(exc, drf.ValidationError):
        fields = flatten_fields(exc.detail)
        return Response(error_body("validation_error", "The request is invalid.", fields or None), status=400)
    for cls, code, status in _DRF_CODES:
        if isinstance(exc, cls):
            message = _detail_text(exc.detail)
            if isinstance(exc, drf.Throttled) and exc.wait:
                headers["Retry-After"] = str(int(exc.wait) + 1)
            if status == 401:
                headers["WWW-Authenticate"] = 'Bearer realm="api"'
            return Response(error_body(code, message), status=status, headers=headers)
    if isinstance(exc, drf.APIException):
        return Response(error_body(exc.default_code, _detail_text(exc.detail)), status=exc.status_code)
    return None  # unexpected: Django's handler500 answers (JSON for /api/)


def _detail_text(detail: Any) -> str:
    if isinstance(detail, (list, tuple)) and detail:
        return str(detail[0])
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {v}" for k, v in detail.items())
    return str(detail)


def _too_big_message() -> str:
    return f"The request body is larger than {settings.MAX_REQUEST_BODY_BYTES} bytes."


def _is_api(path: str) -> bool:
    return path.startswith("/api/")


class BodySizeLimitMiddleware:
    """Refuse oversized bodies (413) before anything reads them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        length = request.META.get("CONTENT_LENGTH")
        if length:
            try:
                too_big = int(length) > settings.MAX_REQUEST_BODY_BYTES
            except ValueError:
                return error_response("malformed_request", "Content-Length is not a number.", 400)
            if too_big:
                return error_response("payload_too_large", _too_big_message(), 413)
        return self.get_response(request)


class _BodyTooBig(Exception):
    pass


class ASGIBodySizeLimit:
    """The same limit on the byte stream itself, in front of Django (orderflow/asgi.py).

    Django's ASGI handler reads the whole body into a spooled file (memory, then disk) before any
    middleware runs, and a chunked body has no Content-Length to judge first. Here a declared length
    over the limit is refused before a byte is read, and the bytes are counted as the server hands
    them over: past the limit the rest is never read (413)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = settings.MAX_REQUEST_BODY_BYTES
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                return await self._refuse(send)
        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooBig
            return message

        try:
            return await self.app(scope, counted_receive, send)
        except _BodyTooBig:  # raised while Django reads the body: nothing was answered yet
            return await self._refuse(send)

    @staticmethod
    async def _refuse(send):
        body = JsonResponse(error_body("payload_too_large", _too_big_message())).content
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]  # fmt: skip
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def handler404(request, exception=None):
    if _is_api(request.path):
        return error_response("not_found", "Not found.", 404)
    return page_not_found(request, exception)


def handler500(request):
    if _is_api(request.path):
        return error_response("internal_error", "Something went wrong on our side; it has been logged.", 500)
    return server_error(request)


def handler400(request, exception=None):
    if isinstance(exception, RequestDataTooBig):
        return error_response("payload_too_large", _too_big_message(), 413)
    return error_response("bad_request", "The request could not be understood.", 400)


def handler403(request, exception=None):
    if _is_api(request.path):
        return error_response("forbidden", "You may not do that.", 403)
    return permission_denied(request, exception)
