"""The dashboard listens in-process: every committed event goes to the store's sockets.

Not an `on_event` handler: the push needs no worker hop and no dedupe row, it rides the
`event_published` signal that fires in the publishing process right after commit."""

from django.dispatch import receiver

from orderflow.core.events import event_published

from .push import push_event


@receiver(event_published, dispatch_uid="dashboard.push_event")
def on_event_published(sender, event, **kwargs):
    push_event(event)
