"""The shopper's tracking page: server-rendered, no credentials, no script, no CDN. It reloads
itself every REFRESH_SECONDS (a `Refresh` header, which browsers honour; the page stays
script-free) until the order reaches a final status (delivered, cancelled, ...), so a shopper
who leaves it open sees the parcel move."""

from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from orderflow.core.store_settings import store_timezone
from orderflow.core.throttles import PublicThrottle, throttle_page

from .models import Order
from .selectors import order_by_tracking_token, tracking

# Longer than the page's Cache-Control max-age, so each reload reads the order afresh.
REFRESH_SECONDS = 60


@require_GET
@throttle_page(PublicThrottle)
def tracking_page(request, token: str):
    order = order_by_tracking_token(token)
    if order is None:
        return render(request, "orders/tracking_not_found.html", status=404)
    data = tracking(order, public=True)
    status = (data["shipment"] or {}).get("status") or ""
    context = {
        "t": data,
        "store_name": order.store.name,
        "tz": store_timezone(order.store),  # the store's zone, as on its dashboard
        "shipment_status": str(status).replace("_", " ").capitalize(),
        # payments' pay-again form (payments/pages.py), offered while the payment has failed
        "pay_again_url": (
            reverse("pay-again", args=[token]) if order.status == Order.Status.PAYMENT_FAILED else ""
        ),
        "retried": request.GET.get("payment") == "retried",
        "refresh_seconds": None if order.status in Order.FINAL_STATUSES else REFRESH_SECONDS,
    }
    response = render(request, "orders/tracking.html", context)
    response["Cache-Control"] = "private, max-age=30"
    response["Referrer-Policy"] = "no-referrer"  # the token is in the URL: never leak it onwards
    if context["refresh_seconds"]:
        response["Refresh"] = str(context["refresh_seconds"])
    return response
