"""Webhook egress cannot reach inside: every non-global address is refused (as a literal and
behind a name, with and without the local-development switch) when an endpoint is saved and again
before each send; the send dials the address that was checked; a trickling or flooding receiver
is cut off; the store reads only a generic error text.

DNS is outside the system, so names are answered by a fake `socket.getaddrinfo` (the `dns`
fixture); IP literals and `localhost` go to the real resolver."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from types import SimpleNamespace

import pytest

from alerts import egress, webhooks
from alerts.models import WebhookDelivery, WebhookEndpoint
from orderflow.core.errors import ValidationFailed
from tests.alerts.support import RawReceiver, fire, flood, trickle_body, trickle_headers

PUBLIC = "93.184.215.14"

NOT_GLOBAL = [
    "169.254.169.254",  # cloud metadata (link-local)
    "10.0.0.1",
    "192.168.1.1",
    "172.16.0.1",
    "100.64.0.1",  # CGNAT
    "0.0.0.0",
    "224.0.0.1",  # multicast
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "192.0.2.1",  # documentation
    "198.18.0.1",  # benchmarking
    "fd00::1",  # unique local
    "fe80::1",  # link-local
    "fec0::1",  # site-local
    "ff02::1",  # multicast
    "::",
    "2001:db8::1",  # documentation
    "2001::1",  # Teredo
    "::ffff:10.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "::a00:1",  # IPv4-compatible 10.0.0.1
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:a00:1::",  # 6to4 of 10.0.0.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1: leads to a relay, not here — refused even with the switch
    "2002:7f00:1::",  # 6to4 of 127.0.0.1: likewise
]
LOOPBACK = ["127.0.0.1", "127.5.5.5", "::1", "::ffff:127.0.0.1"]


def as_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


@pytest.fixture
def dns(monkeypatch):
    """`dns.answers[name] = [addresses]` (or a function of how many times it was asked before)."""
    state = SimpleNamespace(answers={}, calls=[])
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        state.calls.append(host)
        if host not in state.answers:
            return real(host, port, *args, **kwargs)
        answer = state.answers[host]
        if callable(answer):
            answer = answer(state.calls.count(host) - 1)
        if not answer:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        infos = []
        for a in answer:
            if ipaddress.ip_address(a).version == 4:
                infos.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)))
            else:
                infos.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0)))
        return infos

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return state


@pytest.fixture
def dialled(monkeypatch):
    """Every address a send dials (the dial itself still happens)."""
    seen = []
    real = socket.create_connection

    def create_connection(address, *args, **kwargs):
        seen.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    return seen


def refused_on_save(url: str) -> bool:
    try:
        webhooks.validate_url(url)
    except ValidationFailed as exc:
        assert list(exc.fields) == ["url"]
        return True
    return False


def send_once(endpoint_url: str, **kwargs) -> egress.Reply:
    return egress.post(endpoint_url, body=b"{}", headers={"Content-Type": "application/json"}, **kwargs)


# ----------------------------------------------------------------------------------- policy


@pytest.mark.parametrize("switch", [False, True], ids=["switch-off", "switch-on"])
@pytest.mark.parametrize("address", NOT_GLOBAL)
def test_every_non_global_address_is_refused_with_and_without_the_switch(address, switch):
    assert egress.address_allowed(ipaddress.ip_address(address), allow_loopback=switch) is False


@pytest.mark.parametrize("address", LOOPBACK)
def test_loopback_is_allowed_only_with_the_switch(address):
    ip = ipaddress.ip_address(address)
    assert egress.address_allowed(ip, allow_loopback=False) is False
    assert egress.address_allowed(ip, allow_loopback=True) is True


@pytest.mark.parametrize("address", [PUBLIC, "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_global_addresses_are_allowed(address):
    assert egress.address_allowed(ipaddress.ip_address(address), allow_loopback=False) is True


# ---------------------------------------------------------------------- saving an endpoint


@pytest.mark.parametrize("switch", [False, True], ids=["switch-off", "switch-on"])
@pytest.mark.parametrize("address", NOT_GLOBAL)
def test_saving_refuses_a_non_global_address_as_a_literal_and_behind_a_name(address, switch, dns, settings):
    settings.WEBHOOKS_ALLOW_HTTP_LOCALHOST = switch
    dns.answers["inside.example.test"] = [address]
    assert refused_on_save(f"https://{as_host(address)}/hooks")
    assert refused_on_save("https://inside.example.test/hooks")


@pytest.mark.parametrize("address", LOOPBACK)
def test_saving_refuses_loopback_without_the_switch(address, dns, settings):
    settings.WEBHOOKS_ALLOW_HTTP_LOCALHOST = False
    dns.answers["home.example.test"] = [address]
    for url in (f"https://{as_host(address)}/h", f"http://{as_host(address)}/h", "https://home.example.test/h",
                "https://localhost/h", "http://localhost:8000/h"):  # fmt: skip
        assert refused_on_save(url), url


def test_with_the_switch_loopback_is_allowed_over_http_and_https(dns, settings):
    settings.WEBHOOKS_ALLOW_HTTP_LOCALHOST = True
    dns.answers["home.example.test"] = ["127.0.0.1", "::1"]
    for url in ("http://127.0.0.1:9000/h", "https://127.0.0.1/h", "http://localhost:9000/h",
                "http://[::1]:9000/h", "http://home.example.test:9000/h"):  # fmt: skip
        assert webhooks.validate_url(url) == url


def test_a_name_with_one_public_and_one_internal_address_is_refused(dns, settings):
    dns.answers["split.example.test"] = [PUBLIC, "10.0.0.1"]
    dns.answers["home-and-lan.example.test"] = ["127.0.0.1", "192.168.1.1"]
    settings.WEBHOOKS_ALLOW_HTTP_LOCALHOST = True
    assert refused_on_save("https://split.example.test/h")
    assert refused_on_save("http://home-and-lan.example.test/h")  # loopback only means only loopback


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "127.1", "0177.0.0.1"])
def test_other_spellings_of_loopback_are_resolved_and_refused(host, settings):
    settings.WEBHOOKS_ALLOW_HTTP_LOCALHOST = False
    assert refused_on_save(f"https://{host}/h")


def test_plain_http_to_a_public_name_is_refused_even_with_the_switch(dns, settings):
    settings.WEBHOOKS_ALLOW_HTTP_LOCALHOST = True
    dns.answers["hooks.example.test"] = [PUBLIC]
    assert refused_on_save("http://hooks.example.test/h")
    assert webhooks.validate_url("https://hooks.example.test/h") == "https://hooks.example.test/h"


@pytest.mark.django_db
def test_the_api_answers_400_in_the_error_shape_and_saves_nothing(api, dns):
    dns.answers["metadata.example.test"] = ["169.254.169.254"]
    for url in ("https://169.254.169.254/latest/meta-data/", "https://metadata.example.test/",
                "https://[fd00::1]/", "https://[::ffff:10.0.0.1]/"):  # fmt: skip
        r = api.post("/api/v1/webhooks", {"url": url, "topics": ["*"]}, format="json")
        assert r.status_code == 400, url
        error = r.json()["error"]
        assert error["code"] == "validation_error" and "internal address" in error["fields"]["url"][0]
    assert not WebhookEndpoint.all_stores.exists()
    ok = api.post("/api/v1/webhooks", {"url": "https://hooks.example.test/", "topics": ["*"]}, format="json")
    patched = api.patch(f"/api/v1/webhooks/{ok.json()['id']}", {"url": "https://10.0.0.1/"}, format="json")
    assert patched.status_code == 400 and "url" in patched.json()["error"]["fields"]


@pytest.mark.django_db
def test_the_admin_form_refuses_an_internal_address(client, store, dns):
    from tests.factories import make_user

    client.force_login(make_user(superuser=True))
    dns.answers["lan.example.test"] = ["192.168.1.1"]
    r = client.post(
        "/admin/alerts/webhookendpoint/add/",
        {"store": store.pk, "url": "https://lan.example.test/x", "topics": '["*"]', "active": "on"},
    )
    assert r.status_code == 200 and b"internal address" in r.content
    assert not WebhookEndpoint.all_stores.exists()


# ------------------------------------------------------------------------------- sending


def _endpoint_and_delivery(store, url: str) -> WebhookDelivery:
    """An endpoint row as it may stand after DNS changed under it (saved without the check)."""
    WebhookEndpoint.all_stores.create(store=store, url=url, topics=["*"])
    fire(store, "order.created", {})
    return WebhookDelivery.all_stores.get()


def _attempt(delivery, *, can_retry=False) -> str:
    return webhooks.attempt_delivery(
        delivery_id=str(delivery.pk), store_id=delivery.store_id, can_retry=can_retry
    )


@pytest.mark.django_db
@pytest.mark.parametrize("switch", [False, True], ids=["switch-off", "switch-on"])
def test_a_name_that_turned_inward_fails_the_delivery_before_any_dial(store, dns, dialled, settings, switch):
    settings.WEBHOOKS_ALLOW_HTTP_LOCALHOST = switch
    dns.answers["hooks.example.test"] = [PUBLIC]
    webhooks.validate_url("https://hooks.example.test/h")  # fine when it was saved
    delivery = _endpoint_and_delivery(store, "https://hooks.example.test/h")
    dns.answers["hooks.example.test"] = ["169.254.169.254"]
    assert _attempt(delivery, can_retry=True) == "failed"  # not retried: the rule will not change
    delivery.refresh_from_db()
    assert (delivery.status, delivery.http_status, delivery.attempts) == ("failed", None, 1)
    assert delivery.last_error == "address not allowed"
    assert dialled == []


@pytest.mark.django_db
def test_loopback_at_send_time_needs_the_switch(store, receiver, dns, dialled, settings):
    delivery = _endpoint_and_delivery(store, receiver.url)
    settings.WEBHOOKS_ALLOW_HTTP_LOCALHOST = False
    assert _attempt(delivery) == "failed"
    delivery.refresh_from_db()
    assert delivery.last_error == "address not allowed" and dialled == [] and receiver.requests == []


@pytest.mark.django_db
def test_the_send_dials_the_address_it_checked_without_a_second_lookup(store, receiver, dns, dialled):
    """DNS rebinding: the name answers loopback (the switch is on in tests) for the check, then a
    private address to anyone who asks again. Nobody asks again."""
    dns.answers["hooks.rebind.test"] = lambda n: ["127.0.0.1"] if n == 0 else ["10.0.0.1"]
    port = receiver.server.server_address[1]
    delivery = _endpoint_and_delivery(store, f"http://hooks.rebind.test:{port}/hooks")
    assert _attempt(delivery) == "succeeded"
    assert dns.calls.count("hooks.rebind.test") == 1
    assert dialled == [("127.0.0.1", port)]
    (request,) = receiver.requests
    assert request.headers["Host"] == f"hooks.rebind.test:{port}"


def _certificate(tmp_path, name: str):
    """A test CA and a server certificate for `name` signed by it (cryptography comes with daphne)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "OrderFlow test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    leaf = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    pem = serialization.Encoding.PEM
    chain, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    chain.write_bytes(leaf.public_bytes(pem))
    key_file.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(chain, key_file)
    client = ssl.create_default_context(cadata=ca.public_bytes(pem).decode())
    return server, client


@pytest.mark.parametrize("certificate_for", ["hooks.tls.test", "someone-else.test"])
def test_tls_goes_to_the_pinned_address_with_sni_and_the_certificate_checked_against_the_host(
    tmp_path, dns, dialled, monkeypatch, certificate_for
):
    server_context, client_context = _certificate(tmp_path, certificate_for)
    rx = RawReceiver(
        lambda conn: conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n"), tls_context=server_context
    )
    server_context.sni_callback = lambda sock, name, ctx: rx.sni.append(name)
    rx.start()
    try:
        monkeypatch.setattr(egress, "_tls_context", lambda: client_context)
        dns.answers["hooks.tls.test"] = ["127.0.0.1"]
        reply = send_once(rx.url("hooks.tls.test", "https"), timeout=5, allow_loopback=True)
    finally:
        rx.stop()
    assert dialled == [("127.0.0.1", rx.port)] and rx.sni == ["hooks.tls.test"]
    if certificate_for == "hooks.tls.test":
        assert reply == egress.Reply(204)
        assert f"Host: hooks.tls.test:{rx.port}".encode() in rx.requests[0]
    else:
        assert reply == egress.Reply(None, "TLS certificate not valid for host")


# ------------------------------------------------------------------ hostile receivers


@pytest.mark.parametrize("answer", [trickle_headers, trickle_body], ids=["headers", "body"])
def test_a_trickling_receiver_is_cut_off_at_the_overall_deadline(answer):
    """One byte every 0.2 s for ever: each read succeeds, so only an overall deadline ends it."""
    rx = RawReceiver(answer).start()
    try:
        reply = send_once(rx.url(), timeout=0.8, allow_loopback=True)
        assert rx.broke.wait(10), "we hung up on it"
    finally:
        rx.stop()
    assert reply.error == "timed out" and reply.retryable


def test_a_flooding_receiver_is_cut_off_at_64_kib(monkeypatch):
    taken = []
    real = egress._DeadlineReader.readinto

    def readinto(self, buffer):
        n = real(self, buffer)
        taken.append(n)
        return n

    monkeypatch.setattr(egress._DeadlineReader, "readinto", readinto)
    rx = RawReceiver(flood).start()
    try:
        reply = send_once(rx.url(), timeout=10, allow_loopback=True)
    finally:
        rx.stop()
    assert reply == egress.Reply(200, "response too large", retryable=False)
    assert sum(taken) <= egress.MAX_RESPONSE_BYTES == 64 * 1024


@pytest.mark.django_db
@pytest.mark.parametrize(
    "answer, status, error",
    [(flood, "failed", "response too large"), (trickle_body, "pending", "timed out")],
    ids=["flood", "trickle"],
)
def test_deliveries_to_hostile_receivers_record_only_generic_errors(store, settings, answer, status, error):
    """A flood is not retried (the same receiver will answer the same); a timeout is."""
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.8
    rx = RawReceiver(answer).start()
    try:
        delivery = _endpoint_and_delivery(store, rx.url())
        _attempt(delivery, can_retry=True)
    finally:
        rx.stop()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.http_status, delivery.last_error) == (status, 200, error)


@pytest.mark.django_db
def test_an_internal_error_body_is_never_readable_through_the_deliveries_api(api, store, receiver):
    created = api.post("/api/v1/webhooks", {"url": receiver.url, "topics": ["*"]}, format="json").json()
    receiver.error_body = b"FATAL: password=hunter2 host=db.internal port=5432"
    receiver.respond_with(500, 502)
    fire(store, "order.created", {})
    delivery = WebhookDelivery.all_stores.get()
    _attempt(delivery, can_retry=True)
    _attempt(delivery, can_retry=False)
    r = api.get(f"/api/v1/webhooks/{created['id']}/deliveries")
    assert b"hunter2" not in r.content and b"db.internal" not in r.content
    (row,) = r.json()["results"]
    assert row["last_error"] == "receiver answered 502"
    assert [h["error"] for h in row["history"]] == ["receiver answered 500", "receiver answered 502"]


@pytest.mark.django_db
def test_errors_recorded_before_the_egress_rules_are_reduced_to_generic_texts(store, receiver):
    from importlib import import_module

    from django.apps import apps

    scrub = import_module("alerts.migrations.0004_generic_delivery_errors").scrub
    delivery = _endpoint_and_delivery(store, receiver.url)
    old = [
        "HTTP 500: FATAL password=hunter2 host=db.internal",
        "ConnectionError: HTTPConnectionPool(host='10.0.0.7', port=5432): Connection refused",
        "ReadTimeout: HTTPConnectionPool(host='db.internal', port=80): Read timed out.",
        "SSLError: certificate verify failed for db.internal",
        "receiver answered 404",
    ]
    WebhookDelivery.all_stores.filter(pk=delivery.pk).update(
        last_error=old[0], history=[{"at": "2026-12-01T00:00:00Z", "error": e} for e in old]
    )
    scrub(apps, None)
    delivery.refresh_from_db()
    assert delivery.last_error == "receiver answered 500"
    assert [h["error"] for h in delivery.history] == [
        "receiver answered 500", "connection refused", "timed out", "connection failed",
        "receiver answered 404",
    ]  # fmt: skip
