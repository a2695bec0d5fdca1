from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    """Metrics: connects its receivers in every process that loads Django (web, workers, beat,
    the outbox dispatcher), so each records what it does."""

    name = "orderflow.observability"
    label = "observability"
    verbose_name = "OrderFlow metrics"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (task, event and webhook metrics)
