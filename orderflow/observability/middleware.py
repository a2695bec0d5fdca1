"""Request latency per route: the outermost middleware times every request, labelled with the URL
pattern that answered it (`api/v1/orders/<str:order_id>`, never the raw path: one series per
route, not per order), the method and the status code."""

from __future__ import annotations

import time

from . import instruments

METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
UNMATCHED = "<unmatched>"  # no pattern matched (a 404 for an unknown path)


def route_of(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None or not match.route:
        return UNMATCHED
    return match.route


class RequestMetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        method = request.method if request.method in METHODS else "other"
        instruments.REQUEST_DURATION.labels(
            route=route_of(request), method=method, status=str(response.status_code)
        ).observe(time.perf_counter() - started)
        return response
