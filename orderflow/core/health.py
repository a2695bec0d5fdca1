"""Liveness and readiness: /healthz says the process is up; /readyz that the database and the
broker answer, else 503 naming which — only the name: a driver's error text carries hosts and
users, so it goes to the server log, never to whoever asked."""

import logging

from celery import current_app
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

log = logging.getLogger(__name__)


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def _database_ok() -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetchone()
    return True


def _broker_ok() -> bool:
    """The project's Celery app, as the current app (the wiring, orderflow/celery.py, made it):
    core never imports the wiring."""
    with current_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        conn.default_channel  # noqa: B018 — opens the channel: a real round trip
    return True


CHECKS = {"database": _database_ok, "broker": _broker_ok}


def _up(name: str) -> bool:
    try:
        return CHECKS[name]()
    except Exception:
        log.exception("readyz: %s is down", name)
        return False


@require_GET
def readyz(request):
    checks = {name: _up(name) for name in CHECKS}
    down = [name for name, ok in checks.items() if not ok]
    body = {
        "status": "ok" if not down else "unavailable",
        "checks": {name: "ok" if ok else "down" for name, ok in checks.items()},
    }
    if down:
        body["error"] = {"code": "not_ready", "message": f"Down: {', '.join(down)}."}
        return JsonResponse(body, status=503)
    return JsonResponse(body)
