"""`manage.py run_outbox`: the outbox dispatcher (orderflow/core/outbox.py) until SIGTERM/Ctrl-C."""

import signal
import threading

from django.core.management.base import BaseCommand

from orderflow.core import outbox


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
        outbox.dispatcher_started.send(sender=Command)  # tracing sets up here when configured
        self.stdout.write("outbox dispatcher running", ending="\n")
        self.stdout.flush()
        try:
            outbox.run(stop=stop, poll=poll)
        finally:
            outbox.dispatcher_stopped.send(sender=Command)  # tracing exports what it still holds
