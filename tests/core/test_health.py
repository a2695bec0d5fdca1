"""/healthz and /readyz need no store and no credentials."""

import pytest

pytestmark = pytest.mark.django_db


def test_healthz_is_200(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_readyz_reports_database_and_broker(client):
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_readyz_is_503_naming_the_broker_when_it_is_down(client, settings):
    from orderflow.celery import app

    old = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    app._pool = None
    try:
        r = client.get("/readyz")
    finally:
        app.conf.broker_url = old
        app._pool = None
    assert r.status_code == 503
    body = r.json()
    assert body["error"]["code"] == "not_ready" and "broker" in body["error"]["message"]
    assert body["checks"]["database"] == "ok"


def test_schema_and_docs_are_served(client):
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


def test_readyz_names_the_failing_dependency_but_never_the_driver_error(client, monkeypatch, caplog):
    """A driver's error text carries the host and the user: it goes to the log, not the body."""
    from orderflow.core import health

    leak = 'connection to server at "db.internal.example" (10.1.2.3), port 5432 failed: user "orderflow_rw"'

    def broken():
        raise OSError(leak)

    monkeypatch.setitem(health.CHECKS, "database", broken)
    with caplog.at_level("ERROR", logger="orderflow.core.health"):
        r = client.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["checks"] == {"database": "down", "broker": "ok"}
    assert body["error"] == {"code": "not_ready", "message": "Down: database."}
    for secret in ("db.internal.example", "10.1.2.3", "orderflow_rw", "5432"):
        assert secret not in r.content.decode()
    assert leak in caplog.text  # the operator still sees what broke
