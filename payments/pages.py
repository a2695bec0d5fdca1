"""The shopper's pay-again page (`/track/<token>/pay`): a payment_failed order paid with a new card.

Server-rendered, no script: the tracking token is the only credential, as on the tracking page,
and the same per-IP limit applies. The card is validated by intake's own payment serializer (one
source for every card rule) and goes to the vault through `retry.retry_payment`, never to the
database or a log; the form never echoes the number or the CVC back."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods

from orderflow.core.errors import DomainError, InsufficientStock, InvalidTransition, flatten_fields
from orderflow.core.tenancy import use_store
from orderflow.core.throttles import PublicThrottle, throttle_page
from orders.api import PaymentIn
from orders.selectors import order_by_tracking_token

from . import retry

CARD_FIELDS = ("card_number", "exp_month", "exp_year", "cvc")


def _form_data(post) -> dict[str, object]:
    """The form's strings as the JSON intake takes: whole numbers for the expiry, so the same
    serializer judges them (a non-number stays a string and is refused there)."""
    data: dict[str, object] = {name: post.get(name, "").strip() for name in CARD_FIELDS}
    for name in ("exp_month", "exp_year"):
        value = data[name]
        if isinstance(value, str) and value.isascii() and value.isdigit():
            data[name] = int(value)
    return data


@require_http_methods(["GET", "POST"])
@csrf_protect
@throttle_page(PublicThrottle)
def pay_again_page(request, token: str) -> HttpResponse:
    order = order_by_tracking_token(token)
    if order is None:
        return render(request, "orders/tracking_not_found.html", status=404)
    track_url = reverse("track-page", args=[token])
    if not retry.can_retry(order):  # paid, already being paid again, cancelled: nothing to pay here
        return redirect(track_url)
    errors: dict[str, list[str]] = {}
    problem, unavailable, status = "", [], 200
    if request.method == "POST":
        form = PaymentIn(data=_form_data(request.POST))
        if form.is_valid():
            try:
                with use_store(order.store):
                    retry.retry_payment(
                        store=order.store,
                        order_id=order.pk,
                        actor=retry.SHOPPER,
                        requested_by=retry.SHOPPER,
                        card=dict(form.validated_data),
                    )
            except InvalidTransition:  # a double submit: the first one is already paying
                return redirect(f"{track_url}?payment=retried")
            except InsufficientStock as exc:
                with use_store(order.store):
                    unavailable = retry.unavailable_items(order, exc)
                problem, status = "Some items are no longer available, so nothing was charged.", 409
            except DomainError as exc:
                problem, status = exc.message, exc.status
            else:
                return redirect(f"{track_url}?payment=retried")
        else:
            errors, status = flatten_fields(form.errors), 400
    context = {
        "order": order,
        "store_name": order.store.name,
        "items": list(order.items.all()),
        "errors": errors,
        "problem": problem,
        "unavailable": unavailable,
        "track_url": track_url,
        "months": range(1, 13),
        "values": {k: request.POST.get(k, "") for k in ("exp_month", "exp_year")},
    }
    response = render(request, "payments/pay_again.html", context, status=status)
    response["Cache-Control"] = "no-store"
    # The token is in the URL: never sent to another site. "same-origin", not "no-referrer": with
    # no-referrer a browser posts the form with `Origin: null`, which the CSRF check refuses.
    response["Referrer-Policy"] = "same-origin"
    return response
