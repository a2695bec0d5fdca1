"""The payment gateway client: one `requests` session per process, connect and read timeouts from
settings, and two kinds of failure kept apart because they decide what is retried (Saleor's split):

* `GatewayError` — transient: a timeout, a connection error, a 5xx, `processing_error`. Retried with
  the same Idempotency-Key, so a retry after a timeout finds the charge the gateway already made.
* `PaymentError` — final: the gateway answered and said no. `PaymentDeclined` is the 402 decline
  (with its `decline_code`); any other 4xx is a request the gateway will never accept.

The card number goes in the request body and nowhere else: it is never logged or put in errors.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NameResolutionError, NewConnectionError

_session: requests.Session | None = None
_session_pid: int | None = None


def session() -> requests.Session:
    """The process's session (made lazily so each forked worker child gets its own pool)."""
    global _session, _session_pid
    if _session is None or _session_pid != os.getpid():
        s = requests.Session()
        # No urllib3 retries: a retry is ours to decide, with the same key, and to record.
        adapter = HTTPAdapter(max_retries=0, pool_connections=4, pool_maxsize=16)
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        _session, _session_pid = s, os.getpid()
    return _session


@dataclass
class GatewayCall:
    """What one call looked like, for the attempt row (filled in for successes and failures)."""

    http_status: int | None = None
    latency_ms: int | None = None
    body: dict[str, Any] = field(default_factory=dict)


class GatewayError(Exception):
    """Transient: worth retrying with the same idempotency key."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        call: GatewayCall,
        timeout: bool = False,
        outcome_unknown: bool = False,
    ):
        super().__init__(message)
        self.code = code
        self.call = call
        self.timeout = timeout
        # The request may have reached the gateway and been acted on (a read timeout, a connection
        # dropped mid-request): only asking again with the same key can tell. Any HTTP answer, even
        # a 5xx, is a known outcome: a booked charge would have been replayed for the key.
        self.outcome_unknown = outcome_unknown

    @property
    def counts_against_gateway(self) -> bool:
        """Whether this says the gateway itself is unwell (for the circuit breaker).

        `processing_error` is about one card: the gateway answered coherently, so it is retried
        but does not trip the breaker for everyone else."""
        return self.code != "processing_error"


class PaymentError(Exception):
    """Final: the gateway refused; retrying the same request cannot change the answer."""

    def __init__(self, message: str, *, code: str, call: GatewayCall, decline_code: str = ""):
        super().__init__(message)
        self.code = code
        self.decline_code = decline_code
        self.call = call


class PaymentDeclined(PaymentError):
    """402 card_declined: the issuer said no (`decline_code` says why)."""


def _timeouts() -> tuple[float, float]:
    return (settings.GATEWAY_CONNECT_TIMEOUT, settings.GATEWAY_READ_TIMEOUT)


def _never_connected(exc: requests.ConnectionError) -> bool:
    """Refused or unresolvable: the request never left, so nothing can have been charged."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | NameResolutionError)


def _post(path: str, body: dict[str, Any], idempotency_key: str) -> tuple[dict[str, Any], GatewayCall]:
    call = GatewayCall()
    started = time.perf_counter()
    try:
        response = session().post(
            settings.GATEWAY_URL.rstrip("/") + path,
            json=body,
            headers={"Idempotency-Key": idempotency_key},
            timeout=_timeouts(),
        )
    except requests.Timeout as exc:
        call.latency_ms = int((time.perf_counter() - started) * 1000)
        sent = not isinstance(exc, requests.ConnectTimeout)
        raise GatewayError(
            f"gateway timed out ({type(exc).__name__})",
            code="timeout",
            call=call,
            timeout=True,
            outcome_unknown=sent,
        )
    except requests.ConnectionError as exc:
        call.latency_ms = int((time.perf_counter() - started) * 1000)
        raise GatewayError(
            f"could not reach the gateway ({type(exc).__name__})",
            code="connection_error",
            call=call,
            outcome_unknown=not _never_connected(exc),
        )
    call.latency_ms = int((time.perf_counter() - started) * 1000)
    call.http_status = response.status_code
    try:
        payload = response.json()
    except ValueError:
        payload = {}
    call.body = payload if isinstance(payload, dict) else {}
    if 200 <= response.status_code < 300:
        return call.body, call
    err = call.body.get("error") if isinstance(call.body.get("error"), dict) else {}
    code = str(err.get("code") or f"http_{response.status_code}")
    message = str(err.get("message") or f"gateway answered {response.status_code}")[:400]
    if response.status_code >= 500 or response.status_code == 429 or code == "processing_error":
        raise GatewayError(message, code=code, call=call)
    if response.status_code == 402:
        raise PaymentDeclined(message, code=code, call=call, decline_code=str(err.get("decline_code") or ""))
    raise PaymentError(message, code=code, call=call)


@dataclass(frozen=True)
class Charge:
    id: str
    status: str
    amount: Decimal
    currency: str
    call: GatewayCall


def create_charge(
    *,
    amount: Decimal,
    currency: str,
    card_number: str,
    idempotency_key: str,
    description: str = "",
    metadata: dict[str, Any] | None = None,
) -> Charge:
    """POST /v1/charges. Raises GatewayError (retry with the same key) or PaymentError (final)."""
    body, call = _post(
        "/v1/charges",
        {
            "amount": f"{amount:.2f}",
            "currency": currency,
            "card_number": card_number,
            "description": description,
            "metadata": metadata or {},
        },
        idempotency_key,
    )
    if not body.get("id"):
        raise GatewayError("gateway answered without a charge id", code="bad_response", call=call)
    return Charge(
        id=str(body["id"]),
        status=str(body.get("status", "")),
        amount=Decimal(str(body.get("amount", amount))),
        currency=str(body.get("currency", currency)),
        call=call,
    )


@dataclass(frozen=True)
class Refund:
    id: str
    amount: Decimal
    call: GatewayCall


def create_refund(*, charge_id: str, amount: Decimal, idempotency_key: str) -> Refund:
    """POST /v1/refunds with its own idempotency key: a retried refund never refunds twice."""
    body, call = _post("/v1/refunds", {"charge": charge_id, "amount": f"{amount:.2f}"}, idempotency_key)
    return Refund(id=str(body.get("id", "")), amount=Decimal(str(body.get("amount", amount))), call=call)


def is_answering() -> bool:
    """Does the gateway's API answer at all? A lookup of a charge that does not exist must come
    back as a coherent 4xx; a 5xx, a timeout or a refused connection means it is still down.
    Charges nothing, so the breaker can probe with it when no payment is waiting to."""
    try:
        response = session().get(
            settings.GATEWAY_URL.rstrip("/") + "/v1/charges/ch_breaker_probe", timeout=_timeouts()
        )
    except requests.RequestException:
        return False
    return response.status_code < 500
