"""The dashboard listens in-process: every published event goes to the store's sockets, and a
removed membership or a logout goes to the user's sockets so they re-check at once.

Not `on_event` handlers: the push needs no worker hop and no dedupe row, it rides the
`events_published` signal that fires in the publishing process (after a commit, or for each batch
the outbox dispatcher sends). The membership and logout messages are a courtesy that makes the
close immediate; the sockets' periodic re-check (consumers.py) is what guarantees it."""

import logging
from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from orderflow.core.events import Event, events_published
from orderflow.core.tenancy import StoreMembership

from .push import alert_message, send_many, send_to_user
from .tasks import schedule_stats

log = logging.getLogger("orderflow.dashboard.push")


@receiver(events_published, dispatch_uid="dashboard.push_events")
def on_events_published(sender, events, **kwargs):
    push_events(events)


def push_events(events: list[Event]) -> None:
    """Per store, every event (and the alert, if it is one) in one channel-layer send, then maybe
    stats once for the store. Never raises into the publisher (each failure is logged)."""
    by_store: dict[int, list[dict[str, Any]]] = {}
    for event in events:
        try:
            messages = by_store.setdefault(event.store_id, [])
            messages.append({"type": "event", "event": event.as_message()})
            if event.topic.startswith("alert."):
                messages.append(alert_message(event))
        except Exception:
            log.exception("live push of event %s failed", getattr(event, "pk", None))
    for store_id, messages in by_store.items():
        send_many(store_id, messages)
        schedule_stats(store_id)


@receiver(post_delete, sender=StoreMembership, dispatch_uid="dashboard.membership_removed")
def on_membership_removed(sender, instance, **kwargs):
    """After the commit, so the sockets' check reads the membership gone."""
    user_id, store_id = instance.user_id, instance.store_id
    transaction.on_commit(lambda: send_to_user(user_id, {"type": "membership.removed", "store_id": store_id}))


@receiver(user_logged_out, dispatch_uid="dashboard.session_ended")
def on_user_logged_out(sender, request, user, **kwargs):
    """The session ending is named by its key: that browser's sockets close, not the user's others."""
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if user is not None and session_key:
        send_to_user(user.pk, {"type": "session.ended", "session_key": session_key})
