from django.apps import AppConfig


class FulfillmentConfig(AppConfig):
    name = "fulfillment"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (registers this app's event handlers)
