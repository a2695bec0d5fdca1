"""Limits at the edge: the body limit on the byte stream (chunked too), the login lockout and the
password validators, and the per-IP limits of the endpoints that take no credentials."""

from __future__ import annotations

import asyncio

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from orderflow.core.throttles import PerIPThrottle
from tests.factories import make_user

MIB = 1024 * 1024


# ------------------------------------------------------------------------------- body limit


def _asgi_post(path: str, *, total: int, chunk: int = 64 * 1024, content_length: bool = False):
    """POST `total` bytes to the real ASGI application, as a server streams them in; returns
    (status, body, how many body messages the application asked for)."""
    from orderflow.asgi import application

    asked = 0
    messages = [b"x" * chunk] * (total // chunk)

    async def receive():
        nonlocal asked
        asked += 1
        if asked <= len(messages):
            return {"type": "http.request", "body": messages[asked - 1], "more_body": asked < len(messages)}
        await asyncio.sleep(3600)  # the client has nothing more to send

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    headers = [(b"host", b"testserver"), (b"content-type", b"application/json")]
    headers.append(
        (b"content-length", str(total).encode()) if content_length else (b"transfer-encoding", b"chunked")
    )
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    asyncio.run(asyncio.wait_for(application(scope, receive, send), 30))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body, asked


@pytest.mark.parametrize(
    "path", ["/api/v1/orders", "/api/v1/carriers/dhl/webhook", "/admin/login/", "/track/x"]
)
def test_a_chunked_8_mib_body_is_refused_while_it_streams_in(path, settings):
    status, body, asked = _asgi_post(path, total=8 * MIB)
    assert status == 413 and b'"payload_too_large"' in body
    # stopped at the limit: the rest of the 8 MiB was never read (nor spooled to disk)
    assert asked * 64 * 1024 <= settings.MAX_REQUEST_BODY_BYTES + 64 * 1024


def test_a_declared_length_over_the_limit_is_refused_before_a_byte_is_read():
    status, body, asked = _asgi_post("/api/v1/orders", total=8 * MIB, content_length=True)
    assert status == 413 and b'"payload_too_large"' in body
    assert asked == 0


def test_a_chunked_body_under_the_limit_reaches_the_view():
    status, body, _ = _asgi_post("/api/v1/carriers/dhl/webhook", total=64 * 1024)
    assert status == 401 and b'"invalid_signature"' in body  # the view read it and judged the signature


# ------------------------------------------------------------------------ login and passwords


def _login(client, username, password, ip):
    return client.post("/admin/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


@pytest.mark.django_db
def test_the_admin_login_locks_a_username_and_address_out_after_five_failures(client, settings):
    make_user("ada", password="correct-horse-battery-staple")
    assert settings.AXES_FAILURE_LIMIT == 5
    codes = [_login(client, "ada", f"wrong-{i}", "203.0.113.5").status_code for i in range(5)]
    assert codes == [200, 200, 200, 200, 429]  # the form again four times, then locked out
    assert _login(client, "ada", "correct-horse-battery-staple", "203.0.113.5").status_code == 429
    # the lock is on that (username, address) pair: the same user elsewhere, another user here, pass
    assert _login(client, "ada", "correct-horse-battery-staple", "198.51.100.7").status_code == 302
    make_user("grace", password="another-long-passphrase")
    assert _login(client.__class__(), "grace", "another-long-passphrase", "203.0.113.5").status_code == 302


@pytest.mark.django_db
def test_a_successful_login_resets_the_count(client):
    make_user("ada", password="correct-horse-battery-staple")
    for i in range(4):
        assert _login(client, "ada", f"wrong-{i}", "203.0.113.5").status_code == 200
    assert _login(client, "ada", "correct-horse-battery-staple", "203.0.113.5").status_code == 302
    client.logout()
    for i in range(4):
        assert _login(client, "ada", f"wrong-again-{i}", "203.0.113.5").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    "password", ["short7!", "password123", "12345678901234", "ada.lovelace.example"], ids=str
)
def test_the_standard_password_validators_refuse_weak_passwords(password):
    user = make_user("ada.lovelace")
    with pytest.raises(ValidationError):
        validate_password(password, user)


@pytest.mark.django_db
def test_a_strong_password_passes_the_validators():
    validate_password("violet-staircase-47-harbour", make_user("ada"))


# ------------------------------------------------------------------------------ per-IP limits


@pytest.fixture
def low_ip_rates(monkeypatch):
    monkeypatch.setattr(PerIPThrottle, "THROTTLE_RATES", {"public_ip": "3/min", "carrier_ip": "3/min"})


@pytest.mark.django_db
@pytest.mark.usefixtures("low_ip_rates")
def test_public_tracking_api_is_limited_per_client_address(client):
    codes = [client.get("/api/v1/track/nope", REMOTE_ADDR="203.0.113.9").status_code for _ in range(3)]
    assert codes == [404, 404, 404]
    r = client.get("/api/v1/track/nope", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert r.status_code == 429  # a header of the client's own does not buy a new bucket
    assert r.json()["error"]["code"] == "rate_limited" and int(r["Retry-After"]) >= 1
    assert client.get("/api/v1/track/nope", REMOTE_ADDR="198.51.100.1").status_code == 404


@pytest.mark.django_db
@pytest.mark.usefixtures("low_ip_rates")
def test_the_tracking_page_is_limited_per_client_address(client):
    codes = [client.get("/track/nope", REMOTE_ADDR="203.0.113.9").status_code for _ in range(4)]
    assert codes == [404, 404, 404, 429]
    r = client.get("/track/nope", REMOTE_ADDR="203.0.113.9")
    assert r.status_code == 429 and r["Retry-After"] and r["Content-Type"].startswith("text/plain")
    assert client.get("/track/nope", REMOTE_ADDR="198.51.100.1").status_code == 404


@pytest.mark.django_db
@pytest.mark.usefixtures("low_ip_rates")
def test_carrier_webhooks_are_limited_per_client_address(client):
    def post(ip):
        return client.post(
            "/api/v1/carriers/dhl/webhook", b"{}", content_type="application/json", REMOTE_ADDR=ip
        )

    assert [post("203.0.113.9").status_code for _ in range(3)] == [401, 401, 401]
    r = post("203.0.113.9")
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    assert post("198.51.100.1").status_code == 401
