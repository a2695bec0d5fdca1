"""The topic registry against the code: every emit passes a registered typed event (never a topic
string), every event class is registered and emitted by someone, the state machines' topics come
from their tables, and docs/api-contract.md names exactly the registry's topics."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import re

import pytest
from django.db import transaction

from alerts import webhooks
from orderflow.core.errors import ValidationFailed
from orderflow.core.events import Event, EventPayload, StateChange
from orderflow.core.statemachine import transition
from orderflow.core.topics import MACHINES, STEPS, TOPICS
from orders.events import OrderCreated, OrderMoved
from payments.events import PaymentProcessed
from payments.models import Payment
from tests.conftest import ROOT
from tests.dashboard.helpers import make_order

APPS = ["orders", "fraud", "payments", "fulfillment", "inventory", "alerts", "orderflow/core"]
CLASSES = {t.payload.__name__: t.payload for t in TOPICS.values()}


def _modules():
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" not in path.parts:
                yield path, ast.parse(path.read_text())


def _calls(name: str):
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if called == name:
                    yield path.relative_to(ROOT), node


def _event_classes() -> list[type]:
    """Every EventPayload subclass the apps' events modules define."""
    found = []
    for path, _ in _modules():
        where = str(path.relative_to(ROOT))
        if where != "orderflow/core/events.py" and path.name in ("events.py", "store_events.py"):
            module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
            found += [
                v
                for v in vars(module).values()
                if isinstance(v, type) and issubclass(v, EventPayload) and v.__module__ == module.__name__
            ]
    return found


def test_no_emit_passes_a_topic_string_and_each_passes_a_registered_class():
    sites = list(_calls("emit"))
    assert len(sites) > 25
    for where, call in sites:
        arg = call.args[0]
        assert not isinstance(arg, ast.Constant | ast.JoinedStr), (
            f"{where}:{call.lineno} passes a topic string"
        )
        assert "data" not in {k.arg for k in call.keywords}, f"{where}:{call.lineno}"
        if isinstance(arg, ast.Call):
            assert isinstance(arg.func, ast.Name) and arg.func.id in CLASSES, f"{where}:{call.lineno}"
        else:  # a payload built a few lines above (payments/retry.py)
            assert isinstance(arg, ast.Name), f"{where}:{call.lineno}"


def test_only_the_state_machine_writes_an_event_by_topic_name():
    writers = {str(where) for where, _ in _calls("write_event")}
    assert writers == {"orderflow/core/statemachine.py", "orderflow/core/events.py"}  # transition(), emit()
    for where, call in _calls("transition"):
        assert "topic" not in {k.arg for k in call.keywords}, f"{where}:{call.lineno}"


def test_every_event_class_is_registered_and_emitted_by_someone():
    classes = _event_classes()
    typed = [c for c in classes if "topic" in vars(c)]
    machine = [c for c in classes if issubclass(c, StateChange) and c.machine]
    assert {c.topic for c in typed} | {t for t, v in TOPICS.items() if v.payload in machine} == set(TOPICS)
    for cls in typed:
        assert TOPICS[cls.topic].payload is cls
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    used = {node.func.id for _, node in _calls_any() if isinstance(node.func, ast.Name)}
    assert {c.__name__ for c in typed} - used == set()  # every class is built somewhere
    assert {c.__name__ for c in machine} == {m.EVENT_PAYLOAD.__name__ for m in MACHINES.values()}


def _calls_any():
    for path, tree in _modules():
        if path.name not in ("events.py", "store_events.py"):
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    yield path, node


def test_state_topics_come_from_the_transition_tables():
    for prefix, model in MACHINES.items():
        named = set(getattr(model, "NAMED_ENTRIES", ()))
        entered = {str(d) for dsts in model.TRANSITIONS.values() for d in dsts}
        for state in entered - named:
            topic = TOPICS[f"{prefix}.{state}"]
            assert (topic.step, topic.box, topic.payload) == (
                model.EVENT_STEP,
                topic.name,
                model.EVENT_PAYLOAD,
            )
        for state in named:  # a named entry has its named events, and no default topic
            assert (
                f"{prefix}.{state}" not in TOPICS
                or TOPICS[f"{prefix}.{state}"].payload is not model.EVENT_PAYLOAD
            )
            assert [t for t in TOPICS.values() if t.box == f"{prefix}.{state}"], state
    states = {f"{p}.{s}" for p, m in MACHINES.items() for s in m.TRANSITIONS}
    assert {t.box for t in TOPICS.values() if t.box} <= states
    assert {t.step for t in TOPICS.values()} <= set(STEPS)


@pytest.mark.django_db
def test_a_move_refuses_data_its_machine_does_not_declare_and_a_named_entry_without_its_event(store):
    order = make_order(store)
    with pytest.raises(ValueError, match="declares no"), transaction.atomic():
        transition(order, "payment_processing", reason="t", data={"no_such_field": 1})
    payment = Payment(status="processing")
    with pytest.raises(ValueError, match="named event"):
        transition(payment, "succeeded", reason="t")
    with pytest.raises(ValueError, match="cannot describe a move"):
        transition(payment, "failed", event=PaymentProcessed(amount="1.00"))


@pytest.mark.django_db
def test_payloads_read_back_typed_and_an_absent_field_reads_as_its_default(store):
    order = make_order(store)
    with transaction.atomic():
        transition(order, "payment_processing", reason="fraud score 3", data={"score": 3})
    moved = Event.all_stores.filter(order_id=order.pk, topic="order.payment_processing").get()
    assert moved.data == {
        "from": "pending",
        "to": "payment_processing",
        "reason": "fraud score 3",
        "score": 3,
    }
    assert moved.payload == OrderMoved(
        from_state="pending", to="payment_processing", reason="fraud score 3", score=3
    )
    old = Event(topic="order.created", data={"number": 7, "unknown_later_key": 1})
    assert OrderCreated.of(old) == OrderCreated(number=7)  # absent: None, "not known"
    with pytest.raises(ValueError):
        PaymentProcessed.of(old)
    sent = OrderCreated(
        number=1, total="2.00", currency="EUR", item_count=1, units=1, email_domain="x", country="DE"
    )
    assert set(sent.as_data()) == {f.name for f in dataclasses.fields(OrderCreated)}


def test_the_docs_name_exactly_the_registered_topics_by_step():
    text = (ROOT / "docs" / "api-contract.md").read_text()
    section = text.split("## Event topics", 1)[1].split("\n## ", 1)[0]
    listed: dict[str, set[str]] = {}
    for step, names in re.findall(r"^- (\w+): (.+?)(?=^- |\Z)", section, re.M | re.S):
        listed[step] = set(re.findall(r"`([a-z_]+\.[a-z_]+)`", names))
    assert set(listed) == set(STEPS)
    assert {step: names for step, names in listed.items()} == {
        step: {t.name for t in TOPICS.values() if t.step == step} for step in STEPS
    }


def test_a_webhook_subscribes_only_to_topics_the_registry_knows():
    assert webhooks.validate_topics(["order.*", "payment.processed", "*"]) == [
        "order.*",
        "payment.processed",
        "*",
    ]
    for wrong in (["order.creatd"], ["nothing.*"]):
        with pytest.raises(ValidationFailed) as exc:
            webhooks.validate_topics(["*", *wrong])
        assert list(exc.value.fields) == ["topics[1]"]
