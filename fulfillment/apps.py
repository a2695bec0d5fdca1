from django.apps import AppConfig


class FulfillmentConfig(AppConfig):
    name = "fulfillment"

    def ready(self) -> None:
        from . import receivers, watchdog  # noqa: F401  (registers its event handlers, its sweep)
