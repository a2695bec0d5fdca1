"""What a scrape answers, and who may scrape.

`GET /metrics` (the web process) answers, in Prometheus text exposition:
- the process metrics (instruments.py): with PROMETHEUS_MULTIPROC_DIR set, summed over every
  process of this host that writes to that directory — web, Celery workers, beat, the outbox
  dispatcher; without it, this process's own;
- the cluster's shared state (cluster.py), read now.

`manage.py serve_metrics` answers the same process metrics on a port of its own for a host that
runs no web process (a worker host, the dispatcher's), without the cluster part: the web
process's scrape already has it.

Both want `Authorization: Bearer <METRICS_TOKEN>`. With no METRICS_TOKEN the endpoint does not
exist (404): nothing is exposed by default.
"""

from __future__ import annotations

import hmac
import os

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector

from orderflow.core.errors import error_response

from .cluster import ClusterCollector

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
_cluster_registry = CollectorRegistry()
_cluster_registry.register(ClusterCollector())


def multiprocess_dir() -> str:
    """prometheus_client reads this from the environment when a process starts; so do we."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def process_metrics() -> bytes:
    path = multiprocess_dir()
    if not path:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)
    return generate_latest(registry)


def cluster_metrics() -> bytes:
    return generate_latest(_cluster_registry)


def token_matches(authorization: str) -> bool:
    """Is this Authorization header the metrics token? Constant-time; False with no token set."""
    token = settings.METRICS_TOKEN
    scheme, _, given = (authorization or "").partition(" ")
    return (
        bool(token)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), token.encode())
    )


@require_GET
def metrics(request):
    if not settings.METRICS_TOKEN:
        return error_response("not_found", "Not found.", 404)
    if not token_matches(request.headers.get("Authorization", "")):
        response = error_response("not_authenticated", "The metrics token is missing or wrong.", 401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(process_metrics() + cluster_metrics(), content_type=CONTENT_TYPE)


def wsgi_app(environ, start_response):
    """The process metrics for `manage.py serve_metrics`, behind the same token."""
    if environ.get("PATH_INFO", "/") not in ("/", "/metrics"):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    if not token_matches(environ.get("HTTP_AUTHORIZATION", "")):
        start_response(
            "401 Unauthorized",
            [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="metrics"')],
        )
        return [b"the metrics token is missing or wrong\n"]
    body = process_metrics()
    start_response("200 OK", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))])
    return [body]
