"""The live dashboard in a real browser: Daphne serving HTTP and websockets, real Celery worker,
real mock gateway, Debian's Chromium. Screenshots of every page land in test-artifacts/."""

from __future__ import annotations

import re

import pytest
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import expect

from inventory import services as inventory_services
from orderflow.core.events import write_event
from orderflow.core.outbox import dispatch_pending
from orders.models import Order
from tests.browser.conftest import PASSWORD, screenshot
from tests.dashboard.helpers import make_order
from tests.factories import make_product, make_user

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _wait_live(page):
    expect(page.locator("#live")).to_have_text("live")


# Layout facts every page must hold, light and dark: nothing scrolls sideways, no element is wider
# than the window (a table may scroll inside its own .table-wrap).
LAYOUT = """() => {
    const vw = window.innerWidth;
    const inScroller = (e) => {
        for (let p = e.parentElement; p; p = p.parentElement) {
            if (["auto", "scroll", "hidden"].includes(getComputedStyle(p).overflowX)) return true;
        }
        return false;
    };
    const wide = Array.from(document.querySelectorAll("body *"))
        .filter((e) => e.getBoundingClientRect().width > vw + 1 && !inScroller(e))
        .map((e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + "." + String(e.className));
    return { overflow: document.documentElement.scrollWidth - vw, wide: wide.slice(0, 5) };
}"""


def _layout_ok(page, name):
    facts = page.evaluate(LAYOUT)
    assert facts["overflow"] <= 0 and facts["wide"] == [], (name, facts)


def test_login_overview_stats_and_screenshots_of_every_page(transactional_db, open_page, store):
    make_product(store, "TEE-M", price="19.90", stock=3, threshold=5)
    make_product(store, "MUG", price="9.50", stock=80, threshold=5)
    now = timezone.now()
    order = make_order(store, status="paid", payment_status="succeeded", total="42.00",
                       created_at=now, paid_at=now)  # fmt: skip
    Order.all_stores.filter(pk=order.pk).update(card_brand="visa", card_last4="4242")
    make_order(store, status="payment_failed", payment_status="failed", total="13.00")
    with transaction.atomic():
        write_event("order.created", store=store, order_id=order.pk, subject=order,
             data={"number": order.number, "total": "42.00", "currency": "EUR", "units": 2})  # fmt: skip
        write_event(
            "order.payment_processing", store=store, order_id=order.pk, data={"to": "payment_processing"}
        )
        write_event("payment.processed", store=store, order_id=order.pk,
             data={"amount": "42.00", "currency": "EUR", "charge_id": "ch_1"})  # fmt: skip
        write_event("order.paid", store=store, order_id=order.pk, data={"to": "paid"})
    dispatch_pending()
    admin = make_user("admin", superuser=True, password=PASSWORD)
    assert admin.is_superuser

    for scheme in ("light", "dark"):
        page = open_page("admin", color_scheme=scheme)
        page.goto(f"/dashboard/?store={store.slug}")
        _wait_live(page)
        expect(page.locator('[data-k="orders.today"]')).to_have_text("2")
        expect(page.locator('[data-k="revenue.today"]')).to_have_text("42.00")
        expect(page.locator('[data-k="payment_success_rate"]')).to_have_text("50.0 %")
        expect(page.locator('[data-k="low_stock_skus"]')).to_have_text("1")
        expect(page.locator("#recent-orders tbody tr")).to_have_count(2)
        expect(page.locator("#chart-orders rect.bar")).to_have_count(60)
        expect(page.locator('#event-stream li[data-topic="order.created"]')).to_have_count(1)
        _layout_ok(page, f"overview-{scheme}")
        screenshot(page, f"overview-{scheme}")
        urls = {
            "orders": "/dashboard/orders/",
            "order": f"/dashboard/orders/{order.pk}/",
            "workflow": f"/dashboard/workflow/?order={order.pk}",
            "inventory": "/dashboard/inventory/",
            "alerts": "/dashboard/alerts/",
            "integrity": "/dashboard/integrity/",
            "settings": "/dashboard/settings/",
            "stores": "/dashboard/stores/",
        }
        for name, url in urls.items():
            page.goto(url)
            expect(page.locator("h1")).to_be_visible()
            _wait_live(page)
            if name == "order":
                expect(page.locator("#stepper")).to_be_visible()
                # paid, and its pick list opened with the payment: fulfilling
                expect(page.locator("#stepper .step.current")).to_have_text("fulfilling")
                expect(page.locator("#timeline")).to_contain_text(
                    "Payment of €42.00 succeeded (visa •••• 4242)"
                )
                expect(page.locator("#timeline details pre").first).not_to_be_visible()  # the JSON is folded
            if name == "workflow":  # steps left to right, every topic from the start, the path lit
                expect(page.locator("#workflow .board-col")).to_have_count(7)
                expect(page.locator('#workflow .box[data-topics~="inventory.updated"]')).to_have_count(1)
                expect(page.locator("#workflow .box.hit")).not_to_have_count(0)
                expect(page.locator('#workflow .box[data-box="payment.succeeded"] .count')).to_have_text("1")
                expect(page.locator("#workflow .wiring").first).not_to_be_visible()
            _layout_ok(page, f"{name}-{scheme}")
            screenshot(page, f"{name}-{scheme}")
        page.goto(f"/track/{order.tracking_token}")
        expect(page.locator("h1")).to_be_visible()
        _layout_ok(page, f"tracking-{scheme}")
        screenshot(page, f"tracking-{scheme}")
        page.goto("/api/docs/")
        expect(page.locator(".swagger-ui .opblock").first).to_be_visible(
            timeout=60_000
        )  # the schema is built
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert (background == "rgb(15, 19, 24)") == (scheme == "dark"), background
        _layout_ok(page, f"api-docs-{scheme}")
        page.locator(".swagger-ui .opblock-summary").first.click()  # one operation open, as a reader would
        screenshot(page, f"api-docs-{scheme}", full_page=False)

    # the wiring on demand, and the page's parts that follow the order live (no reload)
    page.goto(f"/dashboard/workflow/?store={store.slug}")
    page.check("#show-wiring")
    expect(page.locator("#workflow .wiring").first).to_be_visible()
    screenshot(page, "workflow-wiring-dark")
    page.uncheck("#show-wiring")
    page.goto(f"/dashboard/orders/{order.pk}/")
    _wait_live(page)
    Order.all_stores.filter(pk=order.pk).update(status="fulfilling")
    with transaction.atomic():
        write_event("order.fulfilling", store=store, order_id=order.pk, data={"to": "fulfilling"})
    dispatch_pending()
    expect(page.locator("#stepper .step.current")).to_have_text("fulfilling")
    expect(page.locator("#timeline")).to_contain_text("Fulfillment started")
    expect(page.locator("#order-status")).to_have_text("fulfilling")
    page.goto("/dashboard/")
    _wait_live(page)
    fresh = make_order(store, total="7.00")
    with transaction.atomic():
        write_event("order.created", store=store, order_id=fresh.pk,
             data={"number": fresh.number, "total": "7.00", "currency": "EUR"})  # fmt: skip
    dispatch_pending()
    row = page.locator(f'#recent-orders tr[data-order-id="{fresh.pk}"]')
    expect(row).to_have_count(1)
    with transaction.atomic():
        write_event(
            "order.payment_processing", store=store, order_id=fresh.pk, data={"to": "payment_processing"}
        )
    dispatch_pending()
    expect(row.locator('[data-f="status"] .chip')).to_have_text("payment_processing")
    # low stock is highlighted on the inventory page
    page.goto("/dashboard/inventory/")
    expect(page.locator('#levels tr[data-sku="TEE-M"]')).to_have_class(re.compile(r"\blow\b"))


def test_alert_appears_live_and_is_acknowledged_from_the_page(celery_worker, open_page, store):
    make_product(store, "TEE-M", stock=20, threshold=5)
    make_user("ops", store=store, password=PASSWORD)
    page = open_page("ops")
    page.goto("/dashboard/alerts/")
    _wait_live(page)
    expect(page.locator("#alerts tbody tr.empty")).to_have_count(1)

    # server-side: the SKU drops under its threshold → inventory event → alerts listener (worker)
    inventory_services.adjust(store=store, sku="TEE-M", delta=-17, reason="damaged", actor="test")

    row = page.locator("#alerts tbody tr[data-alert-id]")
    expect(row).to_have_count(1, timeout=20_000)  # no reload: pushed over the websocket
    expect(row.locator(".msg")).to_contain_text("Low stock: TEE-M")
    expect(row.locator(".chip.status")).to_have_text("open")
    expect(page.locator("#toasts .toast")).to_contain_text("Low stock: TEE-M")
    screenshot(page, "alerts-live-light")

    row.get_by_role("button", name="Acknowledge").click()
    expect(row.locator(".chip.status")).to_have_text("acknowledged")
    page.reload()
    expect(page.locator("#alerts tbody tr[data-alert-id] .chip.status")).to_have_text("acknowledged")


def test_test_order_from_the_form_reaches_paid_in_the_event_stream(celery_worker, gateway, open_page, store):
    make_product(store, "MUG", price="9.50", stock=50, threshold=5)
    make_user("ops", store=store, password=PASSWORD)
    page = open_page("ops")
    page.goto("/dashboard/")
    _wait_live(page)
    page.select_option("#test-order select[name=sku]", "MUG")
    page.fill("#test-order input[name=quantity]", "2")
    page.select_option("#test-order select[name=card]", "4242424242424242")
    page.click("#test-order button[type=submit]")
    page.wait_for_url(re.compile(r"placed="))
    order_id = re.search(r"placed=([0-9a-f-]+)", page.url).group(1)
    stream = page.locator("#event-stream")
    expect(stream.locator(f'li[data-topic="order.created"][data-order-id="{order_id}"]')).to_have_count(1)
    expect(stream.locator(f'li[data-topic="payment.processed"][data-order-id="{order_id}"]')).to_have_count(
        1, timeout=30_000
    )
    expect(stream.locator(f'li[data-topic="order.paid"][data-order-id="{order_id}"]')).to_have_count(1)
    # the throttled stats push catches up with the last change (no reload)
    status = page.locator(f'#recent-orders tr[data-order-id="{order_id}"] td:nth-child(2) .chip')
    expect(status).to_have_text(re.compile(r"^(paid|fulfilling|ready_to_ship|shipped)$"), timeout=15_000)
    screenshot(page, "overview-order-paid-light")
    page.goto(f"/dashboard/orders/{order_id}/")
    expect(page.locator("#order-status")).not_to_have_text("pending")
    expect(page.locator('#timeline li[data-topic="order.paid"]')).to_have_count(1)


def test_a_store_a_page_never_receives_store_b_pushes(transactional_db, open_page, store, other_store):
    make_user("alice", store=store, password=PASSWORD)
    page = open_page("alice")
    page.goto("/dashboard/")
    _wait_live(page)
    order_b = make_order(other_store)
    order_a = make_order(store)
    with transaction.atomic():
        write_event("order.created", store=other_store, order_id=order_b.pk, data={"number": 1, "who": "b"})
    dispatch_pending()
    with transaction.atomic():  # a sentinel for store A, sent after B's
        write_event("order.created", store=store, order_id=order_a.pk, data={"number": 2, "who": "a"})
    dispatch_pending()  # the one publishing path: the dispatcher's batch reaches the sockets
    stream = page.locator("#event-stream")
    expect(stream.locator(f'li[data-order-id="{order_a.pk}"]')).to_have_count(1)
    expect(stream.locator(f'li[data-order-id="{order_b.pk}"]')).to_have_count(0)
    # and the socket itself refuses store B for alice
    code = page.evaluate(
        """(slug) => new Promise((resolve) => {
            const ws = new WebSocket("ws://" + location.host + "/ws/dashboard/?store=" + slug);
            ws.onclose = (e) => resolve(e.code);
        })""",
        other_store.slug,
    )
    assert code == 4403
