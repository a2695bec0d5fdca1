"""Helpers of the alerts tests.

`fire()` sends an event through the real event path; `WebhookReceiver` is a real HTTP receiver
(stdlib http.server in a thread on a free port) that answers each POST with the next status from
its script (then 200) and records every request."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis
from django.conf import settings
from django.db import transaction

from orderflow.core.events import emit, handlers_for, run_handler_once
from orderflow.core.tenancy import use_store


def fire(store, topic: str, data: dict | None = None, *, order_id=None, subject_type="", subject_id=""):
    """Emit `topic` in a transaction, then run the alerts app's handlers for it the way a worker
    does (`run_handler_once`: dedupe row + handler in one transaction). Returns the event."""
    with use_store(store), transaction.atomic():
        event = emit(topic, store=store, order_id=order_id, data=data or {}, subject_type=subject_type,
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
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                    status = receiver.script.pop(0) if receiver.script else 200
                payload = b'{"ok": true}' if status < 300 else b'{"error": "scripted"}'
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
