from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The ground floor: tenancy, events, errors and state machines. Imports no app."""

    name = "orderflow.core"
    label = "core"
    verbose_name = "OrderFlow core"

    def ready(self) -> None:
        from . import schema, signals  # noqa: F401  (OpenAPI auth description, task logging)
