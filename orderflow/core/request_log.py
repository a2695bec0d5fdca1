"""One log line per request and per task, carrying request id, store and order id."""

from __future__ import annotations

import contextvars
import logging
import time
import uuid

log = logging.getLogger("orderflow.request")

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
order_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("order_id", default="-")


class ContextFilter(logging.Filter):
    """Adds request_id, store and order_id to every record (defaults '-')."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Here, not at the top: LOGGING loads this filter before the app registry (tenancy has models).
        from .tenancy import current_store

        store = current_store()
        record.request_id = getattr(record, "request_id", None) or request_id_var.get()
        record.store = getattr(record, "store", None) or (store.slug if store else "-")
        record.order_id = getattr(record, "order_id", None) or order_id_var.get()
        return True


class RequestLogMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        rid = request.headers.get("X-Request-ID", "")[:64] or uuid.uuid4().hex[:16]
        token = request_id_var.set(rid)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = rid
        store = getattr(request, "store", None)
        log.info(
            "%s %s %s %.1fms",
            request.method,
            request.path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
            extra={
                "request_id": rid,
                "store": store.slug if store else "-",
                "order_id": getattr(request, "log_order_id", "-"),
            },
        )
        return response
