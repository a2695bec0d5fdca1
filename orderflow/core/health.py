"""Liveness and readiness: /healthz says the process is up; /readyz that the database and the
broker answer, else 503 naming which."""

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def _database_ok() -> str | None:
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()
        return None
    except Exception as exc:
        return str(exc)[:200]


def _broker_ok() -> str | None:
    from orderflow.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            conn.default_channel  # noqa: B018 — opens the channel: a real round trip
        return None
    except Exception as exc:
        return str(exc)[:200] or type(exc).__name__


@require_GET
def readyz(request):
    checks = {"database": _database_ok(), "broker": _broker_ok()}
    down = [name for name, err in checks.items() if err]
    body = {
        "status": "ok" if not down else "unavailable",
        "checks": {k: v or "ok" for k, v in checks.items()},
    }
    if down:
        body["error"] = {"code": "not_ready", "message": f"Down: {', '.join(down)}."}
        return JsonResponse(body, status=503)
    return JsonResponse(body)
