from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"

    def ready(self) -> None:
        from . import receivers, reconciler  # noqa: F401  (registers its event handlers, its sweep)
