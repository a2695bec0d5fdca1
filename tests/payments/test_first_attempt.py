"""The first attempt begun in the screening's transaction (services.screen_and_start_charge): one
commit from the fraud check to the gateway call when nothing would make the charge wait, and
otherwise the pending payment the charge turn has always dealt with."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from orderflow.core import vault
from orderflow.core.events import Event
from payments import breaker, services, tasks
from payments.models import Payment, PaymentAttempt
from tests.factories import make_product
from tests.payments.helpers import create_order, stock

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def product(store):
    return make_product(store, "TEE", price="20.00", stock=10)


def _xid(model, **filters) -> set[str]:
    """The transaction id(s) that wrote these rows (PostgreSQL's xmin)."""
    return set(
        model.all_stores.filter(**filters).extra(select={"x": "xmin::text"}).values_list("x", flat=True)
    )


def test_screening_and_the_first_attempt_commit_together_then_the_charge_lands(store, product, gw):
    order = create_order(store, (product, 2))
    with CaptureQueriesContext(connection) as sql:
        tasks.screen_then_charge(store, str(order.pk))
    order.refresh_from_db()
    payment = Payment.all_stores.get(order=order)
    assert order.status == "fulfilling" and payment.status == "succeeded" and payment.attempts == 1
    attempt = PaymentAttempt.all_stores.get(payment=payment)
    assert attempt.number == 1 and attempt.outcome == "succeeded"
    # the fraud check, the payment's opening and its first attempt: one transaction
    screened = _xid(Event, order_id=order.pk, topic="fraud.checked")
    assert len(screened) == 1 and screened == _xid(Event, order_id=order.pk, topic="payment.processing")
    assert screened != _xid(Event, order_id=order.pk, topic="payment.processed")
    # two commits in all: the screening with the attempt, then the outcome
    statements = [q["sql"] for q in sql.captured_queries]
    assert statements.count("COMMIT") == 2
    # each writes its events in one INSERT (core.events.atomic_with_events): three, then five
    assert sum(s.startswith('INSERT INTO "core_event"') for s in statements) == 2
    emitted = list(Event.all_stores.filter(order_id=order.pk).order_by("id").values_list("topic", flat=True))
    assert emitted[-8:] == [
        "fraud.checked", "order.payment_processing", "payment.processing",
        "payment.processed", "order.paid", "fulfillment.created", "order.fulfilling", "inventory.updated",
    ]  # fmt: skip
    assert breaker.slots_in_use() == 0 and vault.detokenize(store.pk, order.pk) is None
    assert stock(product) == (8, 0)  # committed: on hand 8, nothing left reserved


def test_a_half_open_breaker_is_left_to_the_charge_turn_no_probe_is_taken(store, product, gw):
    order = create_order(store, (product, 1))
    breaker.client().set(breaker.K_OPEN_UNTIL, 0)  # the cool-down is over: the next call probes
    order_after, payment, started = services.screen_and_start_charge(store=store, order_id=order.pk)
    assert order_after.status == "payment_processing" and started is None
    assert payment.status == "pending" and not PaymentAttempt.all_stores.filter(payment=payment).exists()
    assert not breaker.client().exists(breaker.K_PROBE) and breaker.slots_in_use() == 0
    # the charge turn takes the probe and the call goes out
    step = services.attempt_charge(store=store, payment_id=payment.pk)
    assert step.outcome == "succeeded" and breaker.state()["state"] == "closed"


def test_no_free_gateway_slot_leaves_the_payment_pending_for_the_charge_turn(store, product, gw, settings):
    settings.GATEWAY_MAX_CONCURRENT_CALLS = 1
    held = breaker.acquire_slots(1)
    order = create_order(store, (product, 1))
    _order, payment, started = services.screen_and_start_charge(store=store, order_id=order.pk)
    assert started is None and payment.status == "pending" and breaker.slots_in_use() == 1
    breaker.release_slot(held[0])


def test_a_card_no_longer_in_the_vault_is_left_to_the_charge_turn_which_fails_it(store, product, gw):
    order = create_order(store, (product, 1), vault_card=False)
    _order, payment, started = services.screen_and_start_charge(store=store, order_id=order.pk)
    assert started is None and payment.status == "pending"
    assert services.attempt_charge(store=store, payment_id=payment.pk).outcome == "failed"
    payment.refresh_from_db()
    assert payment.error_code == "card_token_expired" and breaker.slots_in_use() == 0


def test_a_failed_commit_rolls_the_screening_back_and_gives_the_slot_back(store, product, gw):
    """A fault in the transaction after the slot was taken (here PostgreSQL refuses the attempt
    row): nothing of the screening stays, and the slot is free again."""
    order = create_order(store, (product, 1))
    with connection.cursor() as cur:
        cur.execute(
            "CREATE FUNCTION refuse_attempt() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"
        )
        cur.execute(
            "CREATE TRIGGER refuse_attempt BEFORE INSERT ON payments_paymentattempt "
            "FOR EACH ROW EXECUTE FUNCTION refuse_attempt()"
        )
    try:
        with pytest.raises(DatabaseError):
            services.screen_and_start_charge(store=store, order_id=order.pk)
    finally:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("DROP TRIGGER refuse_attempt ON payments_paymentattempt")
            cur.execute("DROP FUNCTION refuse_attempt()")
    order.refresh_from_db()
    assert order.status == "pending" and not Payment.all_stores.filter(order=order).exists()
    assert not Event.all_stores.filter(order_id=order.pk, topic="fraud.checked").exists()
    assert breaker.slots_in_use() == 0
    # the redelivered task does it all
    tasks.screen_then_charge(store, str(order.pk))
    assert Payment.all_stores.get(order=order).status == "succeeded"
