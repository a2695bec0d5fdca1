"""The registry of every topic the flow can emit: what the workflow page draws from the start
(before a topic has ever happened), what the order timeline puts into words, what a webhook may
subscribe to and what docs/api-contract.md lists.

Nothing here is listed by hand, and core imports no app: the apps register into it.
- Each typed event class (a subclass of `orderflow.core.events.EventPayload`, in its app's
  `events.py`) registers its topic, step and box when the class is defined.
- Each state machine (a model with `TRANSITIONS`, `EVENT_PREFIX`, `EVENT_STEP`) registers
  `<prefix>.<state>` for every state a move of its table enters, except the states it enters only
  with a named event (`NAMED_ENTRIES`: `payment.processed` enters `payment.succeeded`).
The registry is complete once Django's apps are ready: core's AppConfig registers the machines
and imports every installed app's `events` module (`complete()`).

`box` names the state box a topic lands in, as `<machine prefix>.<state>`. A topic with no box is
an event of its step that moves no state (`inventory.updated`, `fraud.checked`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.utils.module_loading import autodiscover_modules

# The steps, left to right as an order moves through them (the workflow page's columns).
STEPS = ("order", "stock", "payment", "fulfillment", "shipment", "alert", "store")


@dataclass(frozen=True)
class Topic:
    name: str
    step: str
    box: str | None = None  # "<prefix>.<state>" this topic enters, when it moves a state
    payload: Any = None  # the EventPayload class that describes its data


# name -> Topic, in registration order; read it after the apps are ready.
TOPICS: dict[str, Topic] = {}
# prefix -> the stateful model whose moves emit `<prefix>.<state>`.
MACHINES: dict[str, type] = {}


def register(topic: Topic) -> Topic:
    """Add a topic; registering the same name twice with another definition is a bug."""
    if topic.step not in STEPS:
        raise ValueError(f"topic {topic.name}: unknown step {topic.step!r} (one of {STEPS})")
    known = TOPICS.get(topic.name)
    if known is not None and known != topic:
        raise ValueError(f"topic {topic.name} registered twice: {known} and {topic}")
    TOPICS[topic.name] = topic
    return topic


def register_machine(model: type) -> None:
    """Register a state machine: `<prefix>.<state>` for every state a move enters (the table's
    targets) and that the model does not reserve for named events (`NAMED_ENTRIES`)."""
    prefix, step = model.EVENT_PREFIX, model.EVENT_STEP
    known = MACHINES.get(prefix)
    if known is not None and known is not model:
        raise ValueError(f"two machines use the event prefix {prefix}: {known} and {model}")
    MACHINES[prefix] = model
    named = {str(s) for s in getattr(model, "NAMED_ENTRIES", ())}
    entered = {str(dst) for dsts in model.TRANSITIONS.values() for dst in dsts}
    for state in [str(s) for s in model.TRANSITIONS if str(s) in entered - named]:
        register(Topic(f"{prefix}.{state}", step, f"{prefix}.{state}", model.EVENT_PAYLOAD))


def complete() -> None:
    """Called once the apps are ready (core's AppConfig): register every stateful model and import
    every installed app's `events` module, then check that each box is a state of a machine."""
    for model in apps.get_models():
        if hasattr(model, "TRANSITIONS") and hasattr(model, "EVENT_STEP"):
            register_machine(model)
    autodiscover_modules("events")
    check()


def check() -> None:
    states = {f"{p}.{s}" for p, m in MACHINES.items() for s in (str(s) for s in m.TRANSITIONS)}
    wrong = {t.name: t.box for t in TOPICS.values() if t.box and t.box not in states}
    if wrong:
        raise ValueError(f"topics landing in no state of a machine: {wrong}")


def topics_of_box(box: str) -> list[str]:
    """The topics that land in a state box (`payment.succeeded` → `payment.processed`, ...)."""
    return [t.name for t in TOPICS.values() if t.box == box]
