"""The shopper's tracking page: server-rendered, no credentials, no script, no CDN."""

from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from orderflow.core.throttles import PublicThrottle, throttle_page

from .models import Order
from .selectors import order_by_tracking_token, tracking


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
        "shipment_status": str(status).replace("_", " ").capitalize(),
        # payments' pay-again form (payments/pages.py), offered while the payment has failed
        "pay_again_url": (
            reverse("pay-again", args=[token]) if order.status == Order.Status.PAYMENT_FAILED else ""
        ),
        "retried": request.GET.get("payment") == "retried",
    }
    response = render(request, "orders/tracking.html", context)
    response["Cache-Control"] = "private, max-age=30"
    response["Referrer-Policy"] = "no-referrer"  # the token is in the URL: never leak it onwards
    return response
