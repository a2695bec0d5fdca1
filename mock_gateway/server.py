"""HTTP layer: routing, JSON in/out and per-request logging around a :class:`Bank`.

Uses ``ThreadingHTTPServer`` with daemon threads so a slow card or injected latency
holds only its own connection, and shutdown never waits for a sleeping request. HTTP/1.1 with
keep-alive: a client's connection carries call after call (one thread per connection), with
TCP_NODELAY, so a reply's body never waits on the client's delayed ACK of its headers.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mock_gateway.bank import Bank, Reply, error, invalid

MAX_BODY_BYTES = 1_000_000


class BadRequest(Exception):
    """Raised while reading a request body that is not acceptable JSON."""


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], bank: Bank) -> None:
        self.bank = bank
        super().__init__(address, GatewayHandler)


Route = Callable[["GatewayHandler", re.Match[str], dict[str, list[str]]], Reply]


def _health(h: GatewayHandler, m: re.Match[str], q: dict[str, list[str]]) -> Reply:
    return Reply(200, {"status": "ok"})


def _create_charge(h: GatewayHandler, m: re.Match[str], q: dict[str, list[str]]) -> Reply:
    payload = h.json_body()
    card = payload.get("card_number") if isinstance(payload, dict) else None
    if isinstance(card, str) and len(card) >= 12:  # last4 only, and only for real-looking numbers
        h.log_note = f"card=****{card[-4:]}"
    return h.bank.create_charge(payload, h.headers.get("Idempotency-Key"))


def _get_charge(h: GatewayHandler, m: re.Match[str], q: dict[str, list[str]]) -> Reply:
    return h.bank.get_charge(m["charge_id"])


def _create_refund(h: GatewayHandler, m: re.Match[str], q: dict[str, list[str]]) -> Reply:
    return h.bank.create_refund(h.json_body(), h.headers.get("Idempotency-Key"))


def _get_control(h: GatewayHandler, m: re.Match[str], q: dict[str, list[str]]) -> Reply:
    return Reply(200, h.bank.control())


def _post_control(h: GatewayHandler, m: re.Match[str], q: dict[str, list[str]]) -> Reply:
    return h.bank.update_control(h.json_body())


def _get_ledger(h: GatewayHandler, m: re.Match[str], q: dict[str, list[str]]) -> Reply:
    store = q.get("store", [None])[-1]
    order_id = q.get("order_id", [None])[-1]
    return Reply(200, h.bank.ledger(store=store, order_id=order_id))


def _get_stats(h: GatewayHandler, m: re.Match[str], q: dict[str, list[str]]) -> Reply:
    return Reply(200, h.bank.stats())


def _reset_ledger(h: GatewayHandler, m: re.Match[str], q: dict[str, list[str]]) -> Reply:
    h.bank.reset_ledger()
    return Reply(200, {"status": "ok"})


ROUTES: list[tuple[re.Pattern[str], dict[str, Route]]] = [
    (re.compile(r"/health"), {"GET": _health}),
    (re.compile(r"/v1/charges"), {"POST": _create_charge}),
    (re.compile(r"/v1/charges/(?P<charge_id>[^/]+)"), {"GET": _get_charge}),
    (re.compile(r"/v1/refunds"), {"POST": _create_refund}),
    (re.compile(r"/__control"), {"GET": _get_control, "POST": _post_control}),
    (re.compile(r"/__ledger"), {"GET": _get_ledger}),
    (re.compile(r"/__ledger/reset"), {"POST": _reset_ledger}),
    (re.compile(r"/__stats"), {"GET": _get_stats}),
]


class GatewayHandler(BaseHTTPRequestHandler):
    server: GatewayServer
    server_version = "MockGateway/1.0"
    sys_version = ""
    # Keep-alive, as a real gateway's HTTPS endpoint: a client's pooled connection carries call
    # after call (every reply has a Content-Length) instead of a new connection, and a new server
    # thread, per charge.
    protocol_version = "HTTP/1.1"
    # A reply is two writes (the headers at end_headers(), then the body). With Nagle's algorithm
    # on, the body waited for the client's ACK of the headers, which the client delays by up to
    # 40 ms: one charge in five took ~44 ms at a configured latency of 0 (flow_cost's 200 charges:
    # median 2 ms, p90 43 ms). Off, as real HTTP servers run, the latency is what was asked for.
    disable_nagle_algorithm = True

    raw_body: bytes = b""
    log_note: str = ""

    @property
    def bank(self) -> Bank:
        return self.server.bank

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def json_body(self) -> Any:
        if not self.raw_body.strip():
            raise BadRequest("Request body must be a JSON object.")
        try:
            return json.loads(self.raw_body)
        except (ValueError, RecursionError):
            raise BadRequest("Request body is not valid JSON.")

    def _dispatch(self) -> None:
        started = time.perf_counter()
        self.log_note = ""
        path = "?"
        try:
            split = urlsplit(self.path)
            path = split.path.rstrip("/") or "/"
            # Always drain the body first: closing a socket with unread input resets it.
            length = _content_length(self.headers.get("Content-Length"))
            if length is None:
                reply = invalid({"Content-Length": "must be a non-negative integer"}, "Bad Content-Length.")
                self.close_connection = True
            elif length > MAX_BODY_BYTES:
                reply = error(413, "invalid_request", "Request body too large.")
                self.close_connection = True
            else:
                self.raw_body = self.rfile.read(length) if length > 0 else b""
                reply = self._route(path, parse_qs(split.query))
        except BadRequest as exc:
            reply = invalid({"body": str(exc)}, str(exc))
        except Exception as exc:  # never let a bug kill the connection without an answer
            reply = error(500, "internal_error", f"Unexpected error: {type(exc).__name__}.")
        sent = self._send(reply)
        elapsed_ms = (time.perf_counter() - started) * 1000
        note = f" {self.log_note}" if self.log_note else ""
        gone = "" if sent else " (client disconnected)"
        self._log_line(f"{self.command} {path} {reply.status} {elapsed_ms:.1f}ms{note}{gone}")

    def _route(self, path: str, query: dict[str, list[str]]) -> Reply:
        if self.command == "POST" and path.startswith("/v1/"):  # a call that may move money
            self.bank.call_started()
            try:
                return self._answer(path, query)
            finally:
                self.bank.call_finished()
        return self._answer(path, query)

    def _answer(self, path: str, query: dict[str, list[str]]) -> Reply:
        if path.startswith("/v1/") and (down := self.bank.outage_reply()) is not None:
            return down
        for pattern, methods in ROUTES:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            handler = methods.get(self.command)
            if handler is None:
                allowed = ", ".join(sorted(methods))
                return error(
                    405, "method_not_allowed", f"{self.command} not allowed on {path}.", allowed=allowed
                )
            return handler(self, match, query)
        return error(404, "not_found", f"No route for {self.command} {path}.")

    def _send(self, reply: Reply) -> bool:
        data = json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if reply.status == 405:
                self.send_header("Allow", reply.body["error"]["allowed"])
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return False
        return True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: ``_dispatch`` writes its own line (which never holds a card number)."""

    def _log_line(self, text: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        sys.stderr.write(f"{stamp} {text}\n")
        sys.stderr.flush()


def _content_length(header: str | None) -> int | None:
    if not header:
        return 0
    try:
        length = int(header)
    except ValueError:
        return None
    return length if length >= 0 else None


def make_server(host: str, port: int, bank: Bank) -> GatewayServer:
    return GatewayServer((host, port), bank)
