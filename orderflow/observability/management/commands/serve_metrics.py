"""`manage.py serve_metrics --port 9808`: this host's process metrics on a port of its own.

For a host that runs Celery workers (or the outbox dispatcher) and no web process: its processes
write their metrics to PROMETHEUS_MULTIPROC_DIR, and this serves their sum to Prometheus, behind
METRICS_TOKEN like /metrics. See docs/operations.md, "Metrics".
"""

from wsgiref.simple_server import WSGIRequestHandler, make_server

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from orderflow.observability.exposition import multiprocess_dir, wsgi_app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # one line per scrape is noise
        pass


class Command(BaseCommand):
    help = "Serve this host's process metrics (PROMETHEUS_MULTIPROC_DIR) on a port, behind METRICS_TOKEN."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="0.0.0.0")
        parser.add_argument("--port", type=int, default=9808)

    def handle(self, *args, host, port, **options):
        if not settings.METRICS_TOKEN:
            raise CommandError("METRICS_TOKEN is not set: there is nothing to serve without one.")
        if not multiprocess_dir():
            raise CommandError("PROMETHEUS_MULTIPROC_DIR is not set: this process would serve only itself.")
        server = make_server(host, port, wsgi_app, handler_class=_QuietHandler)
        self.stdout.write(f"serving metrics of {multiprocess_dir()} on http://{host}:{port}/metrics")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
