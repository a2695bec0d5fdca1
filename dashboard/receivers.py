"""The dashboard listens in-process: every published event goes to the store's sockets.

Not an `on_event` handler: the push needs no worker hop and no dedupe row, it rides the
`events_published` signal that fires in the publishing process (after a commit, or for each batch
the outbox dispatcher sends)."""

from django.dispatch import receiver

from orderflow.core.events import events_published

from .push import push_events


@receiver(events_published, dispatch_uid="dashboard.push_events")
def on_events_published(sender, events, **kwargs):
    push_events(events)
