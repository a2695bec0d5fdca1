"""`manage.py run_outbox`: the outbox dispatcher (orderflow/core/outbox.py) until SIGTERM/Ctrl-C."""

import signal
import threading

from django.core.management.base import BaseCommand

from orderflow.core import outbox
from orderflow.observability.tracing import setup_tracing, shutdown_tracing


class Command(BaseCommand):
    help = "Publish committed events (Celery messages, live push) in batches, woken by NOTIFY."

    def add_arguments(self, parser):
        parser.add_argument("--poll", type=float, default=None, help="seconds between looks without NOTIFY")

    def handle(self, *args, poll=None, **options):
        stop = threading.Event()

        def _stop(signum, frame):
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        setup_tracing("outbox")  # no-op unless OTEL_EXPORTER_OTLP_ENDPOINT is set
        self.stdout.write("outbox dispatcher running", ending="\n")
        self.stdout.flush()
        try:
            outbox.run(stop=stop, poll=poll)
        finally:
            shutdown_tracing()  # export the spans still buffered
