"""Test settings: the production settings against the local PostgreSQL and Redis, with short clocks.

The integration tests start real worker processes with these same settings, so every backoff
and timer here is what the real worker uses in tests.
"""

import atexit
import os
import subprocess
import sys
import uuid


def _session_rabbitmq_vhost() -> str:
    """TEST_BROKER=rabbitmq (`make test-rabbitmq`): the test session's own vhost on the machine's
    RabbitMQ (RABBITMQ_TEST_URL, default guest on 127.0.0.1:5672), a random name, deleted when the
    session ends. Made here because Celery's settings (queue types, transport options) follow the
    broker URL when they are read, before any fixture runs; every worker, dispatcher and server the
    tests start inherits CELERY_BROKER_URL and so does not come here."""
    base = os.environ.get("RABBITMQ_TEST_URL", "amqp://guest:guest@127.0.0.1:5672").rstrip("/")
    user = base.split("://", 1)[1].split(":", 1)[0]
    vhost = f"of-test-{uuid.uuid4().hex[:12]}"

    def ctl(*args: str) -> None:
        subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)

    ctl("add_vhost", vhost)
    atexit.register(ctl, "delete_vhost", vhost)
    ctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    return f"{base}/{vhost}"


_broker = os.environ.get("TEST_BROKER", "redis")
if _broker not in ("redis", "rabbitmq"):
    raise RuntimeError(f"TEST_BROKER={_broker!r}: expected redis or rabbitmq")
if _broker == "rabbitmq" and not os.environ.get("CELERY_BROKER_URL") and "pytest" in sys.modules:
    os.environ["CELERY_BROKER_URL"] = _session_rabbitmq_vhost()
    # A lost worker connection is noticed in seconds (the reliability suite kills workers).
    os.environ.setdefault("CELERY_BROKER_HEARTBEAT", "10")

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/orderflow")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
# Tests publish to a broker nobody may be consuming; keep the publish path fast either way.
os.environ.setdefault("OUTBOX_RELAY_AFTER_SECONDS", "0.5")
os.environ.setdefault("PAYMENT_RETRY_BACKOFF", "0.2")
os.environ.setdefault("PAYMENT_RETRY_BACKOFF_MAX", "1.0")
os.environ.setdefault("PAYMENT_MAX_RETRIES", "3")
os.environ.setdefault("RECONCILE_STUCK_AFTER_SECONDS", "5")
os.environ.setdefault("RECONCILE_BACKLOG_LIMIT", "0")  # the shared test broker keeps stray messages
os.environ.setdefault("FRAUD_HISTORY_CACHE_SECONDS", "0")  # tests build a history and expect it read
os.environ.setdefault("BREAKER_FAILURE_THRESHOLD", "3")
os.environ.setdefault("BREAKER_COOLDOWN_SECONDS", "2")
os.environ.setdefault("GATEWAY_READ_TIMEOUT", "3")
os.environ.setdefault("FULFILLMENT_AUTOPILOT_STEP_SECONDS", "0.1")
os.environ.setdefault("CARRIER_STEP_SECONDS", "0.1")
os.environ.setdefault("CARRIER_EXCEPTION_RATE", "0")
os.environ.setdefault("WEBHOOKS_ALLOW_HTTP_LOCALHOST", "true")
os.environ.setdefault("WEBHOOK_TIMEOUT_SECONDS", "2")
os.environ.setdefault("WEBHOOK_MAX_RETRIES", "3")
os.environ.setdefault("WEBHOOK_RETRY_BACKOFF", "0.1")
os.environ.setdefault("WEBHOOK_RETRY_BACKOFF_MAX", "0.5")
os.environ.setdefault("DASHBOARD_SOCKET_RECHECK_SECONDS", "0.5")
# DEBUG is off here as in production, so the secrets must be real-looking: these are the suite's
# own (not the development values, which orderflow/core/secrets.py refuses with DEBUG off).
os.environ.setdefault("SECRET_KEY", "test-suite-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("API_KEY_PEPPER", "test-suite-api-key-pepper-0123456789")
os.environ.setdefault("CARRIER_SECRETS", "dhl=test-suite-dhl-carrier-key,ups=test-suite-ups-carrier-key")
os.environ.setdefault("CARD_VAULT_KEY", "dGVzdC1zdWl0ZS1jYXJkLXZhdWx0LWtleS0zMmJ5dGU=")
os.environ.setdefault("IDEMPOTENCY_FINGERPRINT_KEY", "test-suite-idempotency-fingerprint-key")
os.environ.setdefault("METRICS_TOKEN", "test-suite-metrics-token")
# Plain http on localhost (the test client, the integration servers).
for _name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
    os.environ.setdefault(_name, "false")
os.environ.setdefault("SECURE_HSTS_SECONDS", "0")
# Tests that run many requests must not meet the edge limits; the limit tests lower them.
os.environ.setdefault("API_THROTTLE_RATE", "20000/min")
os.environ.setdefault("PUBLIC_THROTTLE_RATE", "100000/min")
os.environ.setdefault("CARRIER_THROTTLE_RATE", "100000/min")

from .settings import *  # noqa: E402,F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
LOGGING["root"]["level"] = os.environ.get("LOG_LEVEL", "WARNING")  # noqa: F405
