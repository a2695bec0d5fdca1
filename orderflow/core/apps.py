from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The ground floor: tenancy, events, errors and state machines. Imports no app."""

    name = "orderflow.core"
    label = "core"
    verbose_name = "OrderFlow core"

    def ready(self) -> None:
        from . import schema, signals, store_events, topics  # noqa: F401  (OpenAPI, task logging, events)

        # Every app's typed events (its `events` module, core's own `store_events`) and every state
        # machine register into the topic registry; core names no app.
        topics.complete()
