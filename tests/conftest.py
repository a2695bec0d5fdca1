"""Shared fixtures: stores and API clients, and for integration tests the real processes —
the mock gateway and Celery workers — running against the test database and a test Redis."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import redis
from django.conf import settings
from rest_framework.test import APIClient

from tests.factories import make_key, make_store

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------- general helpers


def wait_until(predicate, timeout: float = 30.0, every: float = 0.1, message: str = "condition"):
    """Poll until `predicate()` is truthy; fail the test with `message` after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {last!r})")


def load_run_stack():
    """scripts/run_stack.py (`make run`'s launcher) as a module: it is a script, not a package."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_stack", ROOT / "scripts" / "run_stack.py")
    run_stack = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_stack)
    return run_stack


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The suite empties its Redis database (FLUSHDB at the start, and Django's cache.clear() before
# every test), so it only ever empties one it made: empty, or carrying this key, which it sets.
TEST_REDIS_MARKER = "orderflow:test-suite-db"


class ForeignRedisDatabase(Exception):
    """REDIS_URL names a Redis database the suite did not make: it must not be emptied."""


def claim_test_redis(url: str) -> redis.Redis:
    """Empty the test Redis database and mark it as the suite's — or refuse, touching nothing, when
    it is db 0 (`make run`'s) or holds keys without the suite's marker (someone else's data)."""
    client = redis.Redis.from_url(url)
    db = int(client.connection_pool.connection_kwargs.get("db") or 0)
    advice = (
        "Point REDIS_URL at a Redis database of the tests' own (e.g. redis://127.0.0.1:6379/9, the "
        "default of `make test`); the suite empties it at every run. Never db 0, which `make run` uses."
    )
    if db == 0:
        raise ForeignRedisDatabase(f"Refusing to run the tests on Redis db 0 ({url}). {advice}")
    if client.dbsize() and not client.exists(TEST_REDIS_MARKER):
        raise ForeignRedisDatabase(
            f"Refusing to empty Redis db {db} ({url}): it holds keys and is not marked as the test "
            f"suite's ({TEST_REDIS_MARKER}). {advice} If that database is indeed the tests' and may be "
            f"emptied, run `redis-cli -n {db} FLUSHDB` once."
        )
    empty_test_redis(client)
    return client


def empty_test_redis(client: redis.Redis) -> None:
    """FLUSHDB, then the marker again: the next run knows the database for the suite's."""
    client.flushdb()
    client.set(TEST_REDIS_MARKER, "the orderflow test suite empties this database at every run")


@pytest.fixture(scope="session", autouse=True)
def _clean_test_redis():
    """Each run starts with an empty test Redis database (queues, cache, breaker, channels)."""
    try:
        claim_test_redis(settings.REDIS_URL)
    except ForeignRedisDatabase as exc:
        pytest.exit(str(exc), returncode=3)
    yield


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    # what cache.clear() does (FLUSHDB), keeping the marker
    empty_test_redis(cache._cache.get_client(write=True))
    yield


# --------------------------------------------------------------------------- stores, clients


class StoreClient(APIClient):
    """An APIClient that sends a store's X-Store-ID and Bearer key on every request."""

    def __init__(self, store, raw_key: str | None, **kw):
        super().__init__(**kw)
        self.store = store
        self.raw_key = raw_key
        headers = {"HTTP_X_STORE_ID": store.slug}
        if raw_key:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {raw_key}"
        self.credentials(**headers)

    def as_store(self, slug: str) -> StoreClient:
        """The same key, naming another store in X-Store-ID (to try to cross stores)."""
        other = StoreClient(self.store, self.raw_key)
        other.credentials(
            HTTP_X_STORE_ID=slug, **({"HTTP_AUTHORIZATION": f"Bearer {self.raw_key}"} if self.raw_key else {})
        )
        return other


@pytest.fixture
def store(db):
    return make_store("store-a", name="Store A")


@pytest.fixture
def other_store(db):
    return make_store("store-b", name="Store B")


@pytest.fixture
def api(store):
    """A client acting for store A with a valid key."""
    return StoreClient(store, make_key(store))


@pytest.fixture
def api_b(other_store):
    """A client acting for store B with a valid key."""
    return StoreClient(other_store, make_key(other_store))


# ------------------------------------------------------------------- integration: processes


class Gateway:
    """The real mock gateway process, driven over HTTP."""

    def __init__(self, url: str):
        self.url = url

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"{}")

    def control(self, **kw) -> dict:
        return self._call("POST", "/__control", kw)

    def ledger(self, **filters) -> list[dict]:
        qs = "&".join(f"{k}={v}" for k, v in filters.items())
        return self._call("GET", "/__ledger" + (f"?{qs}" if qs else ""))["charges"]

    def stats(self) -> dict:
        """Calls answered, in flight, and the peak of concurrent calls since the last reset."""
        return self._call("GET", "/__stats")

    def reset(self) -> None:
        self.control(reset=True)
        self._call("POST", "/__ledger/reset", {})


@pytest.fixture(scope="session")
def gateway_url():
    """Start `python -m mock_gateway` once per session on a free port."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mock_gateway", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MOCK_GATEWAY_SLOW_MS": "1500"},
    )
    url = f"http://127.0.0.1:{port}"

    def healthy():
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    wait_until(healthy, 20, message="mock gateway /health")
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def gateway(gateway_url):
    gw = Gateway(gateway_url)
    gw.reset()
    yield gw
    gw.reset()


class WorkerProcess:
    """A real `celery worker` subprocess on the test database and the test Redis."""

    def __init__(self, env: dict, queues: str, concurrency: int, pool: str):
        self.env, self.queues, self.concurrency, self.pool = env, queues, concurrency, pool
        self.proc: subprocess.Popen | None = None
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"of-worker-{os.getpid()}-{time.time_ns()}.log"

    def start(self) -> WorkerProcess:
        cmd = [
            sys.executable, "-m", "celery", "-A", "orderflow", "worker", "-l", "INFO",
            "-Q", self.queues, "-c", str(self.concurrency), "-P", self.pool,
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "-n", f"test-{time.time_ns()}@%h",
        ]  # fmt: skip
        self._logf = open(self.log, "wb")
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=self.env, stdout=self._logf, stderr=subprocess.STDOUT, start_new_session=True
        )
        wait_until(
            lambda: b"ready." in self.log.read_bytes() or self.proc.poll() is not None,
            60,
            message="celery worker ready",
        )
        if self.proc.poll() is not None:
            raise RuntimeError("worker died on start:\n" + self.log.read_text()[-3000:])
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the whole process group (the prefork children too)."""
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        if getattr(self, "_logf", None):
            self._logf.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class DispatcherProcess:
    """`manage.py run_outbox`: publishes every event the web server and the workers commit."""

    def __init__(self, env: dict) -> None:
        self.env = env
        self.log = Path(tempfile.gettempdir()) / f"of-outbox-{os.getpid()}-{time.time_ns()}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self._logf = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "run_outbox"],
            cwd=ROOT, env=self.env, stdout=self._logf, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        wait_until(
            lambda: b"dispatcher running" in self.log.read_bytes() or self.proc.poll() is not None,
            60,
            message="outbox dispatcher running",
        )
        if self.proc.poll() is not None:
            raise RuntimeError("outbox dispatcher died on start:\n" + self.output()[-3000:])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
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


@pytest.fixture(scope="session")
def worker_env(django_db_setup, gateway_url) -> dict:
    """Environment for worker processes: the *test* database, the test Redis, the gateway."""
    db = settings.DATABASES["default"]
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "orderflow.settings_test",
        "DATABASE_URL": url,
        "REDIS_URL": settings.REDIS_URL,
        "GATEWAY_URL": gateway_url,
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def start_worker(worker_env):
    """Factory: start_worker(queues=..., concurrency=..., env=...) → a running WorkerProcess, with
    the outbox dispatcher beside the first one (the one publishing path). Every process it
    started is stopped at teardown."""
    started: list[WorkerProcess] = []
    dispatcher: list[DispatcherProcess] = []

    def start(
        queues: str = "default,orders,payments,fulfillment,webhooks",
        concurrency: int = 2,
        pool: str = "prefork",
        env: dict | None = None,
    ) -> WorkerProcess:
        if not dispatcher:  # events reach the workers the production way: the outbox dispatcher
            d = DispatcherProcess({**worker_env, **(env or {})})
            d.start()
            dispatcher.append(d)
        w = WorkerProcess({**worker_env, **(env or {})}, queues, concurrency, pool).start()
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()
    for d in dispatcher:
        d.stop()


@pytest.fixture
def celery_worker(start_worker, transactional_db):
    """One real worker on every queue for this test (the test uses the transactional database)."""
    return start_worker()
