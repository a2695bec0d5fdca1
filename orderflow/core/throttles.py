"""Per-IP limits for the endpoints that take no credentials: the shopper's tracking (API and page)
and the carriers' webhooks. Counted in the shared cache (Redis), like the per-key throttle."""

from __future__ import annotations

from functools import wraps

from django.http import HttpResponse
from rest_framework import throttling


class PerIPThrottle(throttling.SimpleRateThrottle):
    """Per client address. REMOTE_ADDR only, as the fraud check and the login lockout read it: a
    client's own X-Forwarded-For must not pick its bucket (behind a proxy, have the server set
    REMOTE_ADDR from the proxy's header)."""

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": request.META.get("REMOTE_ADDR") or "-"}

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception:  # the cache being down must not take these endpoints down with it
            return True


class PublicThrottle(PerIPThrottle):
    """PUBLIC_THROTTLE_RATE: the shopper's tracking."""

    scope = "public_ip"


class CarrierThrottle(PerIPThrottle):
    """CARRIER_THROTTLE_RATE: carrier webhooks (a carrier sends from few addresses, so more)."""

    scope = "carrier_ip"


def throttle_page(throttle_class: type[PerIPThrottle]):
    """The same limit on a plain Django view (the tracking page): 429 with Retry-After when spent."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            throttle = throttle_class()
            if not throttle.allow_request(request, None):
                wait = throttle.wait()
                response = HttpResponse(
                    "Too many requests from your address; try again shortly.\n",
                    status=429,
                    content_type="text/plain; charset=utf-8",
                )
                response["Retry-After"] = str(int(wait or 0) + 1)
                return response
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
