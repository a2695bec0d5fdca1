"""Helpers of the alerts tests.

`fire()` sends an event through the real event path; `WebhookReceiver` is a real HTTP receiver
(stdlib http.server in a thread on a free port) that answers each POST with the next status from
its script (then 200) and records every request; `RawReceiver` answers on the raw socket (a
trickle, a flood) to show what a hostile receiver gets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis
from django.conf import settings
from django.db import transaction

from orderflow.core.events import handlers_for, run_handler_once, write_event
from orderflow.core.tenancy import use_store


def fire(store, topic: str, data: dict | None = None, *, order_id=None, subject_type="", subject_id=""):
    """Emit `topic` in a transaction, then run the alerts app's handlers for it the way a worker
    does (`run_handler_once`: dedupe row + handler in one transaction). Returns the event."""
    with use_store(store), transaction.atomic():
        event = write_event(topic, store=store, order_id=order_id, data=data or {}, subject_type=subject_type,
                     subject_id=subject_id)  # fmt: skip
    for handler in handlers_for(topic):
        if handler.name.startswith("alerts."):
            assert run_handler_once(event.pk, handler.name) is True
    return event


def queued_tasks(name: str, queue: str = "default") -> list[list]:
    """Arguments of the messages for task `name` waiting in the broker's `queue` (kombu's Redis
    list); they are taken off the queue."""
    r = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    found = []
    for raw in r.lrange(queue, 0, -1):
        message = json.loads(raw)
        if message["headers"].get("task") == name:
            found.append(json.loads(base64.b64decode(message["body"]))[0])
            r.lrem(queue, 1, raw)
    return found


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    def signature_valid(self, secret: str) -> bool:
        """What a store's receiver does: recompute HMAC-SHA256 over "<t>.<raw body>"."""
        parts = dict(p.split("=", 1) for p in self.headers["X-OrderFlow-Signature"].split(","))
        expected = hmac.new(
            secret.encode(), f"{parts['t']}.".encode() + self.body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(expected, parts["v1"])


class WebhookReceiver:
    def __init__(self):
        self.requests: list[Received] = []
        self.script: list[int] = []
        self.error_body = b'{"error": "scripted"}'
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                    status = receiver.script.pop(0) if receiver.script else 200
                payload = b'{"ok": true}' if status < 300 else receiver.error_body
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def respond_with(self, *statuses: int) -> None:
        with self._lock:
            self.script = list(statuses)

    def start(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class RawReceiver:
    """A receiver that misbehaves on purpose: a thread per connection reads the request, then
    `answer(conn)` writes whatever it likes on the raw socket (a trickle, a flood). `broke` is set
    when a write fails because we hung up on it."""

    def __init__(self, answer, *, tls_context=None):
        self.answer, self.tls_context = answer, tls_context
        self.broke = threading.Event()
        self.requests: list[bytes] = []
        self.sni: list[str | None] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def url(self, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}/hooks"

    def start(self) -> RawReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.sock.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            if self.tls_context is not None:
                conn = self.tls_context.wrap_socket(conn, server_side=True)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            while len(body) < length:
                body += conn.recv(65536)
            self.requests.append(head + b"\r\n\r\n" + body)
            self.answer(conn)
        except OSError:
            self.broke.set()
        finally:
            conn.close()


def trickle_headers(conn: socket.socket) -> None:
    """A status line, then one header byte every 0.2 s, for ever."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    while True:
        conn.sendall(b"a")
        time.sleep(0.2)


def trickle_body(conn: socket.socket) -> None:
    """The headers of a 2xx with a large body, then one body byte every 0.2 s, for ever."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
    while True:
        conn.sendall(b"a")
        time.sleep(0.2)


def flood(conn: socket.socket, size: int = 10 * 1024 * 1024) -> None:
    """A 2xx with a 10 MB body."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
    chunk = b"x" * 65536
    for _ in range(size // len(chunk)):
        conn.sendall(chunk)
