"""The shopper's second chance in a real browser: a declined order's tracking page offers
"Pay again", the server-rendered form takes a new card, and the real worker and mock gateway
take the order to paid (Daphne, Celery, Debian's Chromium)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from orders.models import Order
from tests.browser.conftest import screenshot
from tests.conftest import wait_until
from tests.factories import make_product
from tests.payments.helpers import CARD_DECLINED, post_order

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_the_shopper_pays_again_from_the_tracking_page_with_a_new_card(
    celery_worker, gateway, api, store, chromium, daphne_url
):
    make_product(store, "TEE", price="12.50", stock=5)
    order = post_order(api, ("TEE", 1), card=CARD_DECLINED)
    wait_until(
        lambda: Order.all_stores.get(pk=order.pk).status == "payment_failed", 30, message="the decline"
    )

    ctx = chromium.new_context(base_url=daphne_url, viewport={"width": 800, "height": 900})
    ctx.set_default_timeout(15_000)
    try:
        page = ctx.new_page()
        page.goto(f"/track/{order.tracking_token}")
        expect(page.locator(".status")).to_have_text("Payment failed")
        page.click("#pay-again")
        expect(page.locator("h1")).to_contain_text(f"Pay again for order #{order.number}")

        page.fill("#card_number", "4242 4242 4242 4241")  # a typo: refused as intake refuses it
        page.select_option("#exp_month", "12")
        page.fill("#exp_year", "2031")
        page.fill("#cvc", "123")
        page.click("#pay-again button")
        expect(page.locator("#pay-again")).to_contain_text("This is not a valid card number.")
        assert Order.all_stores.get(pk=order.pk).status == "payment_failed"

        page.fill("#card_number", "4242 4242 4242 4242")
        page.fill("#cvc", "123")
        screenshot(page, "pay-again-form")
        page.click("#pay-again button")
        expect(page.locator("#retried")).to_contain_text("we are processing your payment")

        # paid — and, with a quick worker, already moving on to fulfillment: both are "paid"
        wait_until(
            lambda: Order.all_stores.get(pk=order.pk).payment_status == "succeeded", 30, message="paid"
        )
        page.reload()
        expect(page.locator(".status")).not_to_have_text("Payment failed")
        expect(page.locator("ol.timeline")).to_contain_text("Payment confirmed")
        expect(page.locator("ol.timeline")).to_contain_text("Payment tried again")
        expect(page.locator("#pay-again")).to_have_count(0)
        screenshot(page, "pay-again-paid")
    finally:
        ctx.close()
    assert len(gateway.ledger(order_id=str(order.pk))) == 1
