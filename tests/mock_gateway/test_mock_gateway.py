"""Tests for the standalone mock payment gateway.

Most tests drive the REAL process over HTTP (started once per module, reset before each
test); the ``test_bank_*`` tests exercise :class:`mock_gateway.bank.Bank` directly.
No database is used.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mock_gateway.bank import Bank  # noqa: E402

integration = pytest.mark.integration

OK = "4242424242424242"
DECLINED = "4000000000000002"
INSUFFICIENT = "4000000000009995"
PROCESSING_ERROR = "4000000000000119"
SLOW = "4000000000000259"
SLOW_MS = 1000  # the test process runs the slow card at 1 s instead of 2 s
STARTUP_TIMEOUT = 15.0
ORDER_ID = "5b0f7a8e-2c1d-4e3f-9a6b-7c8d9e0f1a2b"

# Never go through an HTTP proxy from the environment for 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# --------------------------------------------------------------------------- helpers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Gateway:
    url: str
    proc: subprocess.Popen[str]
    log_path: Path
    banner: str

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> tuple[int, dict[str, Any]]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, json.loads(exc.read())

    def charge(
        self,
        card: str = OK,
        *,
        key: str | None = None,
        amount: str = "12.50",
        timeout: float = 10.0,
        **extra: Any,
    ) -> tuple[int, dict[str, Any]]:
        body = {
            "amount": amount,
            "currency": "EUR",
            "card_number": card,
            "description": "Order #1",
            "metadata": {"order_id": ORDER_ID, "store": "acme"},
            **extra,
        }
        headers = {"Idempotency-Key": key or str(uuid.uuid4())}
        return self.call("POST", "/v1/charges", body, headers=headers, timeout=timeout)

    def refund(self, body: dict[str, Any], key: str | None = None) -> tuple[int, dict[str, Any]]:
        headers = {"Idempotency-Key": key} if key else {}
        return self.call("POST", "/v1/refunds", body, headers=headers)

    def control(self, **fields: Any) -> dict[str, Any]:
        status, body = self.call("POST", "/__control", fields)
        assert status == 200, body
        return body

    def ledger(self, query: str = "") -> list[dict[str, Any]]:
        status, body = self.call("GET", "/__ledger" + query)
        assert status == 200, body
        return body["charges"]


def _start_gateway(log_path: Path, args: list[str], env_extra: dict[str, str], port: int) -> Gateway:
    env = {**os.environ, **env_extra}
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mock_gateway", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    log.close()
    gateway = Gateway(url=f"http://127.0.0.1:{port}", proc=proc, log_path=log_path, banner="")
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"mock gateway exited early:\n{log_path.read_text()}")
        try:
            if gateway.call("GET", "/health", timeout=1)[0] == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            _stop(proc)
            raise RuntimeError(f"mock gateway did not come up:\n{log_path.read_text()}")
        time.sleep(0.05)
    assert proc.stdout is not None
    gateway.banner = proc.stdout.readline().strip()  # printed before the first answer
    return gateway


def _stop(proc: subprocess.Popen[str]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
    return proc.returncode


@pytest.fixture(scope="module")
def gateway_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    port = _free_port()
    log_path = tmp_path_factory.mktemp("mock_gateway") / "gateway.log"
    gateway = _start_gateway(log_path, ["--port", str(port)], {"MOCK_GATEWAY_SLOW_MS": str(SLOW_MS)}, port)
    yield gateway
    _stop(gateway.proc)


@pytest.fixture
def gw(gateway_process: Gateway) -> Gateway:
    """The shared gateway with an empty ledger and default control settings."""
    assert gateway_process.call("POST", "/__ledger/reset")[0] == 200
    gateway_process.control(reset=True)
    return gateway_process


def _wait_until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


# ------------------------------------------------------------------ process basics


@integration
def test_banner_health_and_default_control(gw: Gateway) -> None:
    assert gw.banner == f"mock gateway listening on {gw.url}"
    assert gw.call("GET", "/health") == (200, {"status": "ok"})
    assert gw.call("GET", "/__control") == (
        200,
        {"failure_rate": 0.0, "latency_ms": 0, "outage": False, "seed": None, "decline_next": 0},
    )


@integration
def test_one_connection_carries_call_after_call(gw: Gateway) -> None:
    """HTTP/1.1 keep-alive, as a real gateway: a client's pooled connection is reused, even after
    an error reply and a refusal, instead of a new connection (and server thread) per charge."""
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(gw.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    try:
        conn.request("GET", "/health")
        first = conn.getresponse()
        assert (first.status, first.version, json.loads(first.read())) == (200, 11, {"status": "ok"})
        local = conn.sock.getsockname()
        body = json.dumps({"amount": "1.00", "currency": "EUR", "card_number": OK}).encode()
        for key in ("keepalive-1", "keepalive-1", "keepalive-2"):
            conn.request(
                "POST", "/v1/charges", body, {"Idempotency-Key": key, "Content-Type": "application/json"}
            )
            answer = conn.getresponse()
            assert answer.status in (200, 201) and json.loads(answer.read())["status"] == "succeeded"
        conn.request("POST", "/v1/charges", b"{", {"Idempotency-Key": "keepalive-3"})
        bad = conn.getresponse()
        assert bad.status == 400 and json.loads(bad.read())["error"]["code"] == "invalid_request"
        conn.request("GET", "/health")
        assert conn.getresponse().status == 200
        assert conn.sock.getsockname() == local, "the same connection all along"
    finally:
        conn.close()


def test_replies_go_out_without_waiting_for_the_clients_ack() -> None:
    """The server's connections run with TCP_NODELAY: a reply is written in two parts (headers,
    then body), and with Nagle's algorithm the body waited for the client's delayed ACK of the
    headers — up to 40 ms on one charge in five at a configured latency of 0."""
    import http.client

    from mock_gateway.server import make_server

    server = make_server("127.0.0.1", 0, Bank())
    accepted: list[socket.socket] = []
    serve = server.process_request

    def keep(request: socket.socket, address: Any) -> None:
        accepted.append(request)
        serve(request, address)

    server.process_request = keep  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
    try:
        conn.request("GET", "/health")
        assert conn.getresponse().status == 200
        assert len(accepted) == 1
        assert accepted[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        conn.close()
        server.shutdown()
        server.server_close()


@integration
def test_env_port_cli_seed_and_clean_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    gateway = _start_gateway(tmp_path / "gw.log", ["--seed", "7"], {"MOCK_GATEWAY_PORT": str(port)}, port)
    try:
        assert gateway.banner == f"mock gateway listening on http://127.0.0.1:{port}"
        assert gateway.call("GET", "/__control")[1]["seed"] == 7
    finally:
        assert _stop(gateway.proc) == 0


@integration
def test_unknown_path_wrong_method_and_malformed_json(gw: Gateway) -> None:
    status, body = gw.call("GET", "/v2/nothing")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = gw.call("DELETE", "/v1/charges")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"
    status, body = gw.call("GET", "/v1/refunds")
    assert status == 405
    status, body = gw.call("POST", "/v1/charges", raw=b"{not json", headers={"Idempotency-Key": "k"})
    assert status == 400 and body["error"]["code"] == "invalid_request"
    status, body = gw.call("POST", "/__control", raw=b"[1,")
    assert status == 400 and body["error"]["code"] == "invalid_request"


# ---------------------------------------------------------------------- test cards


@integration
def test_success_card_creates_charge(gw: Gateway) -> None:
    order_id = str(uuid.uuid4())
    status, body = gw.charge(OK, key="key-ok", metadata={"order_id": order_id, "store": "acme"})
    assert status == 201
    assert re.fullmatch(r"ch_[0-9a-f]+", body["id"])
    assert body["status"] == "succeeded"
    assert body["amount"] == "12.50"
    assert body["currency"] == "EUR"
    assert body["last4"] == "4242"
    assert body["metadata"] == {"order_id": order_id, "store": "acme"}
    assert body["idempotency_key"] == "key-ok"
    assert body["created_at"]
    assert "card_number" not in body

    status, fetched = gw.call("GET", f"/v1/charges/{body['id']}")
    assert status == 200
    assert fetched["id"] == body["id"] and fetched["refunded_amount"] == "0.00"

    [row] = gw.ledger()
    assert row["id"] == body["id"] and row["status"] == "succeeded" and row["idempotency_key"] == "key-ok"
    assert set(row) >= {"id", "idempotency_key", "status", "amount", "currency", "metadata"}
    assert set(row) >= {"refunded_amount", "created_at"}


@integration
def test_amount_is_normalised_to_two_decimals_and_other_cards_succeed(gw: Gateway) -> None:
    status, body = gw.charge("5555555555554444", amount="7.5")
    assert status == 201
    assert body["amount"] == "7.50" and body["last4"] == "4444"


@integration
def test_get_unknown_charge_is_404(gw: Gateway) -> None:
    status, body = gw.call("GET", "/v1/charges/ch_doesnotexist")
    assert status == 404 and body["error"]["code"] == "charge_not_found"


@integration
@pytest.mark.parametrize(
    ("card", "decline_code"),
    [(DECLINED, "generic_decline"), (INSUFFICIENT, "insufficient_funds")],
)
def test_declined_cards_are_final_and_stored(gw: Gateway, card: str, decline_code: str) -> None:
    first = gw.charge(card, key="decline-key")
    status, body = first
    assert status == 402
    assert body["error"]["code"] == "card_declined"
    assert body["error"]["decline_code"] == decline_code
    assert body["error"]["message"]
    # A decline is final: the same key replays it, and no charge exists.
    assert gw.charge(card, key="decline-key") == first
    assert gw.ledger() == []


@integration
def test_processing_error_card_is_transient_and_not_stored(gw: Gateway) -> None:
    for _ in range(3):
        status, body = gw.charge(PROCESSING_ERROR, key="proc-key")
        assert status == 500 and body["error"]["code"] == "processing_error"
    assert gw.ledger() == []
    # Nothing was stored against the key, so it can still be used for a good request.
    status, body = gw.charge(OK, key="proc-key")
    assert status == 201
    assert len(gw.ledger()) == 1


@integration
def test_slow_card_succeeds_slowly(gw: Gateway) -> None:
    started = time.monotonic()
    status, body = gw.charge(SLOW)
    elapsed = time.monotonic() - started
    assert status == 201 and body["last4"] == "0259"
    assert elapsed >= SLOW_MS / 1000 * 0.9
    assert [row["id"] for row in gw.ledger()] == [body["id"]]


@integration
def test_slow_card_does_not_block_other_requests(gw: Gateway) -> None:
    results: dict[str, Any] = {}
    slow_done = threading.Event()

    def slow() -> None:
        results["slow"] = gw.charge(SLOW, key="slow-key")
        slow_done.set()

    thread = threading.Thread(target=slow)
    thread.start()
    # The slow charge is booked before its sleep: once it shows up, it is in flight.
    _wait_until(lambda: len(gw.ledger()) == 1)
    fast = gw.charge(OK, key="fast-key")
    assert fast[0] == 201
    assert not slow_done.is_set(), "the fast request should finish while the slow one is still sleeping"
    thread.join(timeout=10)
    assert results["slow"][0] == 201
    assert len(gw.ledger()) == 2


# -------------------------------------------------------------------- validation


def _valid_charge_body() -> dict[str, Any]:
    return {"amount": "12.50", "currency": "EUR", "card_number": OK, "metadata": {"store": "acme"}}


@integration
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": None}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "-5.00"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"amount": "1.005"}, "amount"),
        ({"amount": 12.5}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"currency": None}, "currency"),
        ({"currency": "EURO"}, "currency"),
        ({"currency": "E1R"}, "currency"),
        ({"card_number": None}, "card_number"),
        ({"card_number": "42424242"}, "card_number"),
        ({"card_number": "4242 4242 4242 4242"}, "card_number"),
        ({"card_number": "4" * 20}, "card_number"),
        ({"card_number": 4242424242424242}, "card_number"),
        ({"metadata": "x"}, "metadata"),
    ],
)
def test_invalid_charge_fields_are_400(gw: Gateway, change: dict[str, Any], field: str) -> None:
    body = {k: v for k, v in {**_valid_charge_body(), **change}.items() if v is not None}
    status, reply = gw.call("POST", "/v1/charges", body, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert status == 400
    assert reply["error"]["code"] == "invalid_request"
    assert field in reply["error"]["fields"]
    assert gw.ledger() == []


@integration
def test_missing_idempotency_key_is_400(gw: Gateway) -> None:
    status, reply = gw.call("POST", "/v1/charges", _valid_charge_body())
    assert status == 400
    assert reply["error"]["code"] == "invalid_request"
    assert "Idempotency-Key" in reply["error"]["fields"]
    assert gw.ledger() == []


# ------------------------------------------------------------------- idempotency


@integration
def test_idempotent_replay_returns_same_charge(gw: Gateway) -> None:
    body = _valid_charge_body()
    headers = {"Idempotency-Key": "replay-key"}
    first = gw.call("POST", "/v1/charges", body, headers=headers)
    assert first[0] == 201
    # Same request, amount spelled differently: still the same request.
    second = gw.call("POST", "/v1/charges", {**body, "amount": "12.5"}, headers=headers)
    assert second == first
    assert [row["id"] for row in gw.ledger()] == [first[1]["id"]]


@integration
def test_same_key_different_body_is_409(gw: Gateway) -> None:
    headers = {"Idempotency-Key": "reused-key"}
    assert gw.call("POST", "/v1/charges", _valid_charge_body(), headers=headers)[0] == 201
    status, reply = gw.call(
        "POST", "/v1/charges", {**_valid_charge_body(), "amount": "99.00"}, headers=headers
    )
    assert status == 409
    assert reply["error"]["code"] == "idempotency_key_reused"
    assert len(gw.ledger()) == 1


@integration
@pytest.mark.parametrize("card", [SLOW, OK])
def test_concurrent_twins_make_one_charge(gw: Gateway, card: str) -> None:
    if card == OK:
        gw.control(latency_ms=300)  # widen the window for the plain card too
    barrier = threading.Barrier(10)
    results: list[tuple[int, dict[str, Any]]] = []
    elapsed: list[float] = []
    lock = threading.Lock()
    body = {**_valid_charge_body(), "card_number": card}

    def twin() -> None:
        barrier.wait()
        started = time.monotonic()
        result = gw.call("POST", "/v1/charges", body, headers={"Idempotency-Key": "twin-key"}, timeout=30)
        with lock:
            results.append(result)
            elapsed.append(time.monotonic() - started)

    threads = [threading.Thread(target=twin) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 10
    assert {status for status, _ in results} == {201}
    assert len({reply["id"] for _, reply in results}) == 1
    assert len(gw.ledger()) == 1
    if card == SLOW:
        # Twins wait for the in-flight first request instead of answering around it.
        assert min(elapsed) >= SLOW_MS / 1000 * 0.9


@integration
def test_latency_timeout_then_retry_returns_same_charge(gw: Gateway) -> None:
    gw.control(latency_ms=1500)
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        gw.charge(OK, key="timeout-key", timeout=0.4)
    # The bank charged before the slow answer.
    [row] = gw.ledger()
    assert row["idempotency_key"] == "timeout-key"
    gw.control(latency_ms=0)
    status, body = gw.charge(OK, key="timeout-key")
    assert status == 201
    assert body["id"] == row["id"]
    assert len(gw.ledger()) == 1


# ------------------------------------------------------------------ fault control


@integration
def test_outage_then_recovery(gw: Gateway) -> None:
    assert gw.control(outage=True)["outage"] is True
    status, body = gw.charge(OK, key="outage-key")
    assert status == 503 and body["error"]["code"] == "gateway_unavailable"
    assert gw.call("GET", "/v1/charges/ch_x")[0] == 503
    assert gw.refund({"charge": "ch_x"})[0] == 503
    assert gw.call("GET", "/health") == (200, {"status": "ok"})
    assert gw.ledger() == []
    gw.control(outage=False)
    status, body = gw.charge(OK, key="outage-key")
    assert status == 201
    assert len(gw.ledger()) == 1


@integration
def test_failure_rate_one_fails_without_charging_then_retry_succeeds(gw: Gateway) -> None:
    gw.control(failure_rate=1.0, seed=1)
    for _ in range(6):
        status, body = gw.charge(OK, key="flaky-key")
        assert status in (500, 503)
        assert body["error"]["code"] in ("gateway_unavailable", "internal_error")
    assert gw.ledger() == []
    gw.control(failure_rate=0)
    status, body = gw.charge(OK, key="flaky-key")
    assert status == 201
    assert len(gw.ledger()) == 1


@integration
def test_seed_makes_failure_sequence_reproducible(gw: Gateway) -> None:
    def run(seed: int, tag: str) -> list[int]:
        gw.control(failure_rate=0.5, seed=seed)
        return [gw.charge(OK, key=f"{tag}-{i}")[0] for i in range(24)]

    first = run(1234, "a")
    second = run(1234, "b")
    other = run(99, "c")
    assert first == second
    assert 201 in first and any(status >= 500 for status in first)
    assert other != first


@integration
@pytest.mark.parametrize(
    "payload",
    [
        {"failure_rate": 1.5},
        {"failure_rate": -0.1},
        {"failure_rate": "0.5"},
        {"failure_rate": True},
        {"latency_ms": -1},
        {"latency_ms": 1.5},
        {"latency_ms": "10"},
        {"outage": "yes"},
        {"outage": 1},
        {"seed": "x"},
        {"seed": 1.5},
        {"reset": "yes"},
        {"decline_next": -1},
        {"decline_next": "1"},
        {"unknown": 1},
        {"outage": True, "failure_rate": 2},
    ],
)
def test_control_validation(gw: Gateway, payload: dict[str, Any]) -> None:
    status, body = gw.call("POST", "/__control", payload)
    assert status == 400 and body["error"]["code"] == "invalid_request"
    # Nothing was applied, not even the valid part of a mixed payload.
    assert gw.call("GET", "/__control")[1] == {
        "failure_rate": 0.0,
        "latency_ms": 0,
        "outage": False,
        "seed": None,
        "decline_next": 0,
    }


@integration
def test_control_update_and_reset(gw: Gateway) -> None:
    assert gw.control(failure_rate=0.25, latency_ms=5) == {
        "failure_rate": 0.25,
        "latency_ms": 5,
        "outage": False,
        "seed": None,
        "decline_next": 0,
    }
    assert gw.control(seed=3, outage=True)["seed"] == 3
    assert gw.call("GET", "/__control")[1] == {
        "failure_rate": 0.25,
        "latency_ms": 5,
        "outage": True,
        "seed": 3,
        "decline_next": 0,
    }
    assert gw.control(reset=True) == {
        "failure_rate": 0.0,
        "latency_ms": 0,
        "outage": False,
        "seed": None,
        "decline_next": 0,
    }
    assert gw.control(seed=None)["seed"] is None


# ------------------------------------------------------------------------ refunds


@integration
def test_full_refund_by_default(gw: Gateway) -> None:
    charge = gw.charge(OK)[1]
    status, refund = gw.refund({"charge": charge["id"]})
    assert status == 201
    assert re.fullmatch(r"re_[0-9a-f]+", refund["id"])
    assert refund["charge"] == charge["id"]
    assert refund["amount"] == "12.50"
    assert refund["status"] == "succeeded"
    fetched = gw.call("GET", f"/v1/charges/{charge['id']}")[1]
    assert fetched["refunded_amount"] == "12.50" and fetched["status"] == "refunded"
    status, body = gw.refund({"charge": charge["id"]})
    assert status == 400 and body["error"]["code"] == "amount_too_large"


@integration
def test_partial_refunds_and_over_refund(gw: Gateway) -> None:
    charge = gw.charge(OK, amount="10.00")[1]
    assert gw.refund({"charge": charge["id"], "amount": "4.00"})[0] == 201
    fetched = gw.call("GET", f"/v1/charges/{charge['id']}")[1]
    assert fetched["refunded_amount"] == "4.00" and fetched["status"] == "partially_refunded"

    status, body = gw.refund({"charge": charge["id"], "amount": "6.01"})
    assert status == 400 and body["error"]["code"] == "amount_too_large"

    status, rest = gw.refund({"charge": charge["id"]})
    assert status == 201 and rest["amount"] == "6.00"
    [row] = gw.ledger()
    assert row["refunded_amount"] == "10.00" and row["status"] == "refunded"


@integration
def test_refund_unknown_charge_and_invalid_amount(gw: Gateway) -> None:
    status, body = gw.refund({"charge": "ch_nope", "amount": "1.00"})
    assert status == 404 and body["error"]["code"] == "charge_not_found"
    status, body = gw.refund({"amount": "1.00"})
    assert status == 400 and body["error"]["code"] == "invalid_request"
    status, body = gw.refund({"charge": "ch_nope", "amount": "-1"})
    assert status == 400 and "amount" in body["error"]["fields"]


@integration
def test_refund_idempotency(gw: Gateway) -> None:
    charge = gw.charge(OK, amount="10.00")[1]
    first = gw.refund({"charge": charge["id"], "amount": "3.00"}, key="refund-key")
    assert first[0] == 201
    assert gw.refund({"charge": charge["id"], "amount": "3.00"}, key="refund-key") == first
    status, body = gw.refund({"charge": charge["id"], "amount": "4.00"}, key="refund-key")
    assert status == 409 and body["error"]["code"] == "idempotency_key_reused"
    assert gw.call("GET", f"/v1/charges/{charge['id']}")[1]["refunded_amount"] == "3.00"
    status, body = gw.call("GET", "/__ledger")
    assert [refund["id"] for refund in body["refunds"]] == [first[1]["id"]]


@integration
def test_refund_transient_failure_is_not_stored(gw: Gateway) -> None:
    charge = gw.charge(OK)[1]
    gw.control(failure_rate=1.0)
    status, _ = gw.refund({"charge": charge["id"]}, key="refund-flaky")
    assert status in (500, 503)
    assert gw.ledger()[0]["refunded_amount"] == "0.00"
    gw.control(failure_rate=0.0)
    status, refund = gw.refund({"charge": charge["id"]}, key="refund-flaky")
    assert status == 201 and refund["amount"] == "12.50"


# ------------------------------------------------------------------------- ledger


@integration
def test_ledger_filters_and_reset(gw: Gateway) -> None:
    order_a, order_b = str(uuid.uuid4()), str(uuid.uuid4())
    a = gw.charge(OK, metadata={"order_id": order_a, "store": "acme"})[1]
    b = gw.charge(OK, metadata={"order_id": order_b, "store": "globex"})[1]
    gw.charge(DECLINED)  # declines are not charges
    assert [row["id"] for row in gw.ledger()] == [a["id"], b["id"]]
    assert [row["id"] for row in gw.ledger("?store=globex")] == [b["id"]]
    assert [row["id"] for row in gw.ledger(f"?order_id={order_a}")] == [a["id"]]
    assert gw.ledger("?store=nobody") == []
    assert gw.call("POST", "/__ledger/reset") == (200, {"status": "ok"})
    assert gw.ledger() == []


@integration
def test_log_has_one_line_per_request_and_no_card_numbers(gw: Gateway) -> None:
    gw.charge(OK, key="log-key")
    gw.charge(DECLINED)
    _wait_until(lambda: "****0002" in gw.log_path.read_text())
    log = gw.log_path.read_text()
    assert OK not in log and DECLINED not in log
    assert re.search(r"POST /v1/charges 201 [0-9.]+ms card=\*\*\*\*4242", log)
    assert re.search(r"GET /health 200 [0-9.]+ms", log)


# ------------------------------------------------------------------ Bank unit tests


class RecordingSleep:
    """Stand-in for time.sleep that records durations and can run a check at sleep time."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.on_sleep: Any = None

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.on_sleep is not None:
            self.on_sleep()


def _bank(**kwargs: Any) -> tuple[Bank, RecordingSleep]:
    sleep = RecordingSleep()
    return Bank(sleep=sleep, **kwargs), sleep


def test_bank_charge_replay_and_conflict() -> None:
    bank, _ = _bank()
    first = bank.create_charge(_valid_charge_body(), "k")
    assert first.status == 201
    assert bank.create_charge(_valid_charge_body(), "k") is first
    conflict = bank.create_charge({**_valid_charge_body(), "currency": "USD"}, "k")
    assert conflict.status == 409 and conflict.body["error"]["code"] == "idempotency_key_reused"
    assert len(bank.ledger()["charges"]) == 1


def test_bank_decline_is_stored_processing_error_is_not() -> None:
    bank, _ = _bank()
    decline = bank.create_charge({**_valid_charge_body(), "card_number": INSUFFICIENT}, "d")
    assert decline.status == 402 and decline.body["error"]["decline_code"] == "insufficient_funds"
    assert bank.create_charge({**_valid_charge_body(), "card_number": INSUFFICIENT}, "d") is decline
    body = {**_valid_charge_body(), "card_number": PROCESSING_ERROR}
    assert bank.create_charge(body, "p").status == 500
    assert bank.create_charge(body, "p").status == 500
    assert bank.create_charge(_valid_charge_body(), "p").status == 201  # key still free
    assert len(bank.ledger()["charges"]) == 1


def test_bank_decline_next_declines_that_many_fresh_charges_whatever_the_card() -> None:
    bank, _ = _bank()
    assert bank.update_control({"decline_next": 1}).body["decline_next"] == 1
    first = bank.create_charge(_valid_charge_body(), "a")
    assert first.status == 402 and first.body["error"]["decline_code"] == "generic_decline"
    assert bank.create_charge(_valid_charge_body(), "a") is first  # a decline stays the key's answer
    assert bank.create_charge(_valid_charge_body(), "b").status == 201  # a new key, the count spent
    assert bank.control()["decline_next"] == 0
    assert len(bank.ledger()["charges"]) == 1


def test_bank_books_charge_before_latency_and_slow_sleep() -> None:
    bank, sleep = _bank(slow_ms=2000)
    seen: list[int] = []
    sleep.on_sleep = lambda: seen.append(len(bank.ledger()["charges"]))
    bank.update_control({"latency_ms": 250})
    assert bank.create_charge({**_valid_charge_body(), "card_number": SLOW}, "slow").status == 201
    assert sleep.calls == [2.0, 0.25]
    assert seen == [1, 1]  # already booked when each sleep started


def test_bank_validation_errors() -> None:
    bank, _ = _bank()
    reply = bank.create_charge({"amount": "0", "currency": "EU", "card_number": "1"}, None)
    assert reply.status == 400
    assert set(reply.body["error"]["fields"]) == {"amount", "currency", "card_number", "Idempotency-Key"}
    assert bank.create_charge(["not", "an", "object"], "k").status == 400
    assert bank.create_refund({"charge": 5}, None).status == 400


def test_bank_outage() -> None:
    bank, sleep = _bank()
    bank.update_control({"outage": True, "latency_ms": 100})
    reply = bank.create_charge(_valid_charge_body(), "k")
    assert reply.status == 503 and reply.body["error"]["code"] == "gateway_unavailable"
    assert bank.get_charge("ch_x").status == 503
    assert sleep.calls == []  # immediately, no latency
    assert bank.ledger()["charges"] == []


def test_bank_seeded_failure_rate_is_reproducible() -> None:
    def statuses(seed: int) -> list[int]:
        bank, _ = _bank(seed=seed)
        bank.update_control({"failure_rate": 0.5})
        return [bank.create_charge(_valid_charge_body(), f"k{i}").status for i in range(40)]

    assert statuses(5) == statuses(5)
    assert set(statuses(5)) >= {201} and any(s >= 500 for s in statuses(5))


def test_bank_refunds() -> None:
    bank, _ = _bank()
    charge = bank.create_charge({**_valid_charge_body(), "amount": "10.00"}, "c").body
    assert bank.create_refund({"charge": "ch_missing"}, None).status == 404
    part = bank.create_refund({"charge": charge["id"], "amount": "2.50"}, "r1")
    assert part.status == 201 and part.body["amount"] == "2.50"
    assert bank.create_refund({"charge": charge["id"], "amount": "2.50"}, "r1") is part
    too_much = bank.create_refund({"charge": charge["id"], "amount": "7.51"}, None)
    assert too_much.status == 400 and too_much.body["error"]["code"] == "amount_too_large"
    rest = bank.create_refund({"charge": charge["id"]}, None)
    assert rest.status == 201 and rest.body["amount"] == "7.50"
    fetched = bank.get_charge(charge["id"]).body
    assert fetched["status"] == "refunded" and fetched["refunded_amount"] == "10.00"


def test_bank_over_refund_is_refused_with_the_charge_totals() -> None:
    bank, _ = _bank()
    charge = bank.create_charge({**_valid_charge_body(), "amount": "10.00"}, "c").body
    assert bank.create_refund({"charge": charge["id"], "amount": "4.00"}, "a").status == 201
    refused = bank.create_refund({"charge": charge["id"], "amount": "6.01"}, "b")
    assert refused.status == 400
    err = refused.body["error"]
    assert err["code"] == "amount_too_large" and "6.01" in err["message"]
    assert (err["charge_amount"], err["refunded_amount"], err["refundable_amount"]) == (
        "10.00",
        "4.00",
        "6.00",
    )
    # a refusal is not stored for its key: once it fits, the same key may refund
    assert bank.ledger()["charges"][0]["refunded_amount"] == "4.00"


def test_bank_ledger_lists_the_refunds_of_each_charge() -> None:
    bank, _ = _bank()
    first = bank.create_charge({**_valid_charge_body(), "amount": "10.00"}, "c1").body
    second = bank.create_charge({**_valid_charge_body(), "amount": "5.00"}, "c2").body
    a = bank.create_refund({"charge": first["id"], "amount": "1.00"}, "r1").body
    b = bank.create_refund({"charge": first["id"], "amount": "2.00"}, "r2").body
    rows = {c["id"]: c for c in bank.ledger()["charges"]}
    assert [r["id"] for r in rows[first["id"]]["refunds"]] == [a["id"], b["id"]]
    assert rows[first["id"]]["refunded_amount"] == "3.00"
    assert rows[first["id"]]["status"] == "partially_refunded"
    assert rows[second["id"]]["refunds"] == []


def test_bank_concurrent_partial_refunds_never_exceed_the_charge() -> None:
    """Twenty racing refunds of 1.00 (each its own key) on a 10.00 charge: exactly ten succeed."""
    bank, _ = _bank()
    charge = bank.create_charge({**_valid_charge_body(), "amount": "10.00"}, "c").body
    results: list[int] = []
    start = threading.Barrier(20)

    def refund(n: int) -> None:
        start.wait()
        results.append(bank.create_refund({"charge": charge["id"], "amount": "1.00"}, f"r{n}").status)

    threads = [threading.Thread(target=refund, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [201] * 10 + [400] * 10
    row = bank.ledger()["charges"][0]
    assert row["refunded_amount"] == "10.00" and len(row["refunds"]) == 10


def test_bank_control_validation_is_all_or_nothing() -> None:
    bank, _ = _bank(seed=9)
    assert bank.update_control({"outage": True, "latency_ms": -5}).status == 400
    assert bank.control() == {
        "failure_rate": 0.0,
        "latency_ms": 0,
        "outage": False,
        "seed": 9,
        "decline_next": 0,
    }
    assert bank.update_control({"failure_rate": 1, "seed": None}).body["failure_rate"] == 1.0
    assert bank.update_control({"reset": True}).body == bank.control()
    assert bank.control()["seed"] == 9  # reset returns to the startup defaults


class SlowDecisionBank(Bank):
    """A bank whose decision takes a while, to widen the window for racing twins."""

    def _decide_charge(self, request: Any, key: str) -> Any:
        time.sleep(0.05)
        return super()._decide_charge(request, key)


def test_bank_concurrent_twins_make_one_charge() -> None:
    bank = SlowDecisionBank(slow_ms=200)
    barrier = threading.Barrier(10)
    replies = []
    lock = threading.Lock()

    def twin() -> None:
        barrier.wait()
        reply = bank.create_charge({**_valid_charge_body(), "card_number": SLOW}, "twin")
        with lock:
            replies.append(reply)

    threads = [threading.Thread(target=twin) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(replies) == 10
    assert len({reply.body["id"] for reply in replies}) == 1
    assert len(bank.ledger()["charges"]) == 1
