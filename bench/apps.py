"""A Django app used only by bench/settings_nofanout.py (an A/B run, never in production)."""

from django.apps import AppConfig


class NoFanoutConfig(AppConfig):
    """Drops the catch-all webhook fan-out handler from the event registry, to measure what it
    costs when a store has no webhook endpoint: one Celery message and one task per event."""

    name = "bench"
    label = "bench_nofanout"

    def ready(self) -> None:
        from orderflow.core import events

        events._HANDLERS.pop("alerts.receivers.fan_out_to_webhooks", None)
