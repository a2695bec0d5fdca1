"""The gateway circuit breaker, its state in Redis so every worker process and host agrees.

closed ──(BREAKER_FAILURE_THRESHOLD consecutive gateway failures)──▶ open
open ──(BREAKER_COOLDOWN_SECONDS pass)──▶ half-open: exactly one probe call is let through
half-open ──probe succeeds──▶ closed          half-open ──probe fails──▶ open again

While open, payments do not call the gateway: they wait (payments.services, "waiting") without
spending their retry budget, and are released oldest first once it closes. Any success resets the
failure count and closes the breaker.

Beside the breaker, a semaphore bounds the gateway calls in flight at once across every worker
(GATEWAY_MAX_CONCURRENT_CALLS): a slot is taken before a charge and given back after it; a slot
whose holder died frees itself when its hold runs out.

The stores whose payments met the open breaker are kept in a Redis set, so the caller can tell
each of them when the gateway is back (`gateway.down` / `gateway.up` per store). If Redis itself
fails, the breaker fails open (calls go through): it protects the gateway, it must not stop us.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import dataclass

import redis
from django.conf import settings

log = logging.getLogger("orderflow.payments.breaker")

_PREFIX = "of:breaker:gateway"
K_FAILURES = f"{_PREFIX}:failures"
K_OPEN_UNTIL = f"{_PREFIX}:open_until"
K_OPENED_AT = f"{_PREFIX}:opened_at"
K_PROBE = f"{_PREFIX}:probe"
K_STORES = f"{_PREFIX}:stores"
K_SLOTS = f"{_PREFIX}:slots"  # the concurrency semaphore: token -> expiry (a sorted set)

_client: redis.Redis | None = None


def client() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    return _client


def _threshold() -> int:
    return max(1, int(settings.BREAKER_FAILURE_THRESHOLD))


def _cooldown() -> float:
    return float(settings.BREAKER_COOLDOWN_SECONDS)


def _probe_ttl() -> int:
    """A probe that dies mid-call must not hold the half-open slot for ever."""
    return int(settings.GATEWAY_CONNECT_TIMEOUT + settings.GATEWAY_READ_TIMEOUT) + 5


def jitter() -> float:
    return random.uniform(0, max(0.1, _cooldown() / 4))


@dataclass(frozen=True)
class Permit:
    allowed: bool
    wait_seconds: float = 0.0
    probe: bool = False


def before_call() -> Permit:
    """May a payment call the gateway now? If not, how long until it should ask again."""
    try:
        r = client()
        raw = r.get(K_OPEN_UNTIL)
        if raw is None:
            return Permit(True)
        remaining = float(raw) - time.time()
        if remaining > 0:
            return Permit(False, remaining)
        if r.set(K_PROBE, uuid.uuid4().hex, nx=True, ex=_probe_ttl()):
            return Permit(True, probe=True)
        return Permit(False, max(0.2, _cooldown() / 4))  # someone else is probing
    except redis.RedisError as exc:
        log.warning("breaker state unavailable, letting the call through: %s", exc)
        return Permit(True)


def record_success() -> list[int]:
    """A call got a coherent answer: the breaker closes. Returns the ids of the stores to tell
    the gateway is back — every store told it was down and not told since — and forgets them, all
    in one MULTI.

    Not only the success that closed an open breaker reports them: a failure that opened the
    breaker can add its store (and send `gateway.down`) just after a concurrent success closed it
    and read the set, and that store would then never hear `gateway.up` (the reliability suite's
    gateway-outage scenario caught an alert left open that way). The next success, or the beat
    probe, tells it."""
    try:
        pipe = client().pipeline(transaction=True)
        pipe.delete(K_FAILURES)
        pipe.getdel(K_OPEN_UNTIL)
        pipe.smembers(K_STORES)
        pipe.delete(K_STORES, K_PROBE, K_OPENED_AT)
        _, _was_open, members, _ = pipe.execute()
        return sorted(int(m) for m in members)
    except redis.RedisError as exc:
        log.warning("breaker state unavailable on success: %s", exc)
        return []


@dataclass(frozen=True)
class FailureResult:
    opened: bool  # this failure opened the breaker
    store_is_new: bool  # first time this store meets the open breaker (tell it: gateway.down)
    failures: int


def record_failure(store_id: int) -> FailureResult:
    """A call failed in a way that says the gateway is unwell."""
    try:
        r = client()
        failures = int(r.incr(K_FAILURES))
        r.expire(K_FAILURES, 3600)
        now = time.time()
        raw = r.get(K_OPEN_UNTIL)
        opened = False
        if raw is None:
            if failures < _threshold():
                return FailureResult(False, False, failures)
            opened = bool(r.set(K_OPEN_UNTIL, now + _cooldown(), nx=True))
            if opened:
                r.set(K_OPENED_AT, now)
        elif float(raw) <= now:
            # half-open and the probe (or a late call) failed: open for another cool-down
            r.set(K_OPEN_UNTIL, now + _cooldown())
            r.delete(K_PROBE)
        store_is_new = bool(r.sadd(K_STORES, store_id))
        return FailureResult(opened, store_is_new, failures)
    except redis.RedisError as exc:
        log.warning("breaker state unavailable on failure: %s", exc)
        return FailureResult(False, False, 0)


def probe_failed() -> None:
    """The beat probe found the gateway still down: open for another cool-down."""
    try:
        r = client()
        r.set(K_OPEN_UNTIL, time.time() + _cooldown())
        r.delete(K_PROBE)
    except redis.RedisError as exc:
        log.warning("breaker state unavailable on probe failure: %s", exc)


def note_store(store_id: int) -> bool:
    """Remember that this store met the open breaker; True the first time (tell it)."""
    try:
        return bool(client().sadd(K_STORES, store_id))
    except redis.RedisError:
        return False


def state() -> dict:
    """For dashboards: closed / open / half_open, consecutive failures, when it reopens to calls."""
    try:
        r = client()
        failures, open_until, opened_at = r.mget(K_FAILURES, K_OPEN_UNTIL, K_OPENED_AT)
        stores = r.scard(K_STORES)
    except redis.RedisError:
        return {"state": "unknown", "failures": None, "open_until": None, "opened_at": None, "stores": None}
    if open_until is None:
        name = "closed"
    else:
        name = "open" if float(open_until) > time.time() else "half_open"
    return {
        "state": name,
        "failures": int(failures or 0),
        "open_until": float(open_until) if open_until else None,
        "opened_at": float(opened_at) if opened_at else None,
        "stores": stores,
    }


def is_closed() -> bool:
    """Calls flow normally (not open, not half-open). Unknown (Redis down) counts as closed."""
    try:
        return not client().exists(K_OPEN_UNTIL)
    except redis.RedisError:
        return True


# ------------------------------------------------------------------------- the semaphore

UNLIMITED = "-"  # the token handed out when Redis is unavailable: fail open, as the breaker does

_ACQUIRE = """
local now, expiry, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local free = limit - redis.call('ZCARD', KEYS[1])
local taken = 0
for i = 4, #ARGV do
  if taken >= free then break end
  redis.call('ZADD', KEYS[1], expiry, ARGV[i])
  taken = taken + 1
end
redis.call('EXPIRE', KEYS[1], 3600)
return taken
"""


def slot_hold_seconds() -> float:
    """How long a slot is held at most: a released order's task may sit in the queue a little
    before its call, then the call itself (connect + read timeouts)."""
    return 2 * (settings.GATEWAY_CONNECT_TIMEOUT + settings.GATEWAY_READ_TIMEOUT) + 30


def acquire_slots(n: int = 1) -> list[str]:
    """Up to `n` slots of the gateway semaphore (fewer, or none, when it is full)."""
    if n <= 0:
        return []
    tokens = [uuid.uuid4().hex for _ in range(n)]
    now = time.time()
    try:
        taken = int(
            client().eval(
                _ACQUIRE,
                1,
                K_SLOTS,
                now,
                now + slot_hold_seconds(),
                settings.GATEWAY_MAX_CONCURRENT_CALLS,
                *tokens,
            )
        )
    except redis.RedisError as exc:
        log.warning("gateway semaphore unavailable, letting the call through: %s", exc)
        return [UNLIMITED] * n
    return tokens[:taken]


def release_slot(token: str | None) -> None:
    if not token or token == UNLIMITED:
        return
    try:
        client().zrem(K_SLOTS, token)
    except redis.RedisError as exc:
        log.warning("gateway semaphore unavailable on release (the slot frees itself later): %s", exc)


def slots_in_use() -> int:
    try:
        r = client()
        r.zremrangebyscore(K_SLOTS, "-inf", time.time())
        return int(r.zcard(K_SLOTS))
    except redis.RedisError:
        return 0


def reset() -> None:
    """Forget everything (tests and operators)."""
    client().delete(K_FAILURES, K_OPEN_UNTIL, K_OPENED_AT, K_PROBE, K_STORES, K_SLOTS)
