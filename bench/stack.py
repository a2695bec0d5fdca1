"""The benchmark stack: the production setup the README documents, on the bench database.

PostgreSQL `of_bench` (dropped, recreated and migrated), Redis db 12 (flushed), DEBUG off,
LOG_LEVEL=WARNING; the outbox dispatcher publishing every event ; HTTP by
`gunicorn orderflow.asgi:application -k uvicorn.workers.UvicornWorker -w 2`, websockets by daphne
on another port, Celery worker(s) on every queue, beat, the mock gateway at zero latency, the
fulfillment autopilot on with no wait between steps, the carrier simulator off (an order's journey
ends at ready_to_ship → shipped) and no effective throttle.

Every process runs in its own process group and is stopped by group (SIGTERM, then SIGKILL).

    .venv/bin/python bench/stack.py            # start it, print URLs and the key, Ctrl-C stops
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.common import HOST, ROOT, VENV_BIN, say

LOGS = ROOT / "var" / "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Proc:
    name: str
    cmd: list[str]
    env: dict[str, str]
    popen: subprocess.Popen | None = None
    log: Path | None = None

    def start(self) -> Proc:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log = LOGS / f"{self.name}.log"
        logf = open(self.log, "wb")
        self.popen = subprocess.Popen(
            self.cmd, cwd=ROOT, env=self.env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True
        )
        logf.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 15) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        # children that outlived their parent (a prefork child, a gunicorn worker) go too
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:] if self.log else ""
        except OSError:
            return ""


def default_web_workers() -> int:
    """gunicorn -w: 2 for 2 cores (README); run_all.py sets BENCH_WEB_WORKERS to the measured best."""
    return int(os.environ.get("BENCH_WEB_WORKERS", "2"))


@dataclass
class Stack:
    web_workers: int = field(default_factory=default_web_workers)
    worker_procs: int = 2
    beat: bool = True
    daphne: bool = True
    workers_running: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, Proc] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # BENCH_STACK_ENV='{"NAME": "value"}' adds environment to every process (A/B experiments)
        self.extra_env = {**json.loads(os.environ.get("BENCH_STACK_ENV") or "{}"), **self.extra_env}
        self.web_port = free_port()
        self.ws_port = free_port()
        self.gateway_port = free_port()
        self.env = common.base_env(
            GATEWAY_URL=f"http://{HOST}:{self.gateway_port}",
            ALLOWED_HOSTS="localhost,127.0.0.1",
            CSRF_TRUSTED_ORIGINS=f"http://{HOST}:{self.web_port},http://{HOST}:{self.ws_port}",
            PUBLIC_BASE_URL=f"http://{HOST}:{self.web_port}",
            **self.extra_env,
        )
        # Under an ASGI server every request's sync code runs in a fresh thread, and a persistent
        # connection (CONN_MAX_AGE=60, the default) is never reused nor closed: 100 requests
        # exhaust PostgreSQL's max_connections. Django's advice for ASGI: no persistent
        # connections, a pool instead (settings.py: DB_POOL_MAX_SIZE, psycopg_pool). Without the
        # pool (DB_POOL_MAX_SIZE=0) every request dials PostgreSQL and 128 connections meet
        # "too many clients". The workers are plain processes and keep persistent connections.
        self.web_env = {
            **self.env,
            "DB_CONN_MAX_AGE": self.extra_env.get("DB_CONN_MAX_AGE", "0"),
            "DB_POOL_MAX_SIZE": self.extra_env.get("DB_POOL_MAX_SIZE", "10"),
        }

    # ------------------------------------------------------------------------ lifecycle

    def prepare(self) -> dict[str, Any]:
        """Fresh database, the bench store and catalogue, an empty Redis db."""
        from bench import data

        say(f"fresh database {common.BENCH_DB}, Redis db {common.REDIS_DB}")
        common.reset_database()
        common.django_setup()
        self.data = data.seed()
        common.flush_redis()  # the catalogue's own event messages: not part of any measurement
        return self.data

    def start(self) -> Stack:
        if not self.data:
            self.prepare()
        self._start_gateway()
        self.procs["outbox"] = Proc("outbox", [sys.executable, "manage.py", "run_outbox"], self.env).start()
        self.start_web(self.web_workers)
        if self.daphne:
            self.procs["daphne"] = Proc(
                "daphne",
                [str(VENV_BIN / "daphne"), "-b", HOST, "-p", str(self.ws_port), "orderflow.asgi:application"],
                self.web_env,
            ).start()
        if self.beat:
            self.procs["beat"] = Proc(
                "beat",
                [str(VENV_BIN / "celery"), "-A", "orderflow", "beat", "-l", "WARNING",
                 "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler", "--pidfile="],
                self.env,
            ).start()  # fmt: skip
        if self.workers_running:
            self.start_worker(self.worker_procs)
        self.wait_ready()
        return self

    def _start_gateway(self) -> None:
        self.procs["gateway"] = Proc(
            "gateway",
            [sys.executable, "-m", "mock_gateway", "--host", HOST, "--port", str(self.gateway_port)],
            self.env,
        ).start()
        common.wait_for(lambda: self._get(self.gateway_port, "/health") == 200, 20, message="mock gateway")
        # zero latency, no failures (the defaults, said out loud)
        req = urllib.request.Request(
            f"http://{HOST}:{self.gateway_port}/__control",
            data=b'{"latency_ms": 0, "failure_rate": 0, "outage": false}',
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with contextlib.suppress(OSError):
            urllib.request.urlopen(req, timeout=2).read()

    def start_web(self, workers: int) -> None:
        if "web" in self.procs:
            self.procs.pop("web").stop()
        self.web_workers = workers
        self.procs["web"] = Proc(
            "web",
            [str(VENV_BIN / "gunicorn"), "orderflow.asgi:application", "-k", "uvicorn.workers.UvicornWorker",
             "-w", str(workers), "-b", f"{HOST}:{self.web_port}", "--log-level", "warning",
             "--graceful-timeout", "5"],
            self.web_env,
        ).start()  # fmt: skip
        common.wait_for(lambda: self._get(self.web_port, "/readyz") == 200, 60, message="gunicorn /readyz")

    def start_worker(self, procs: int, *, count_tasks: bool = True) -> None:
        """`celery worker` on every queue, taken in the settings' order as `make run`'s worker takes
        them, with `procs` prefork processes; returns once it is ready."""
        self.stop_worker()
        self.worker_procs = procs
        ready = LOGS / "worker.ready"
        LOGS.mkdir(parents=True, exist_ok=True)
        ready.unlink(missing_ok=True)
        env = {**self.env, "BENCH_READY_FILE": str(ready), "BENCH_COUNT_TASKS": "1" if count_tasks else "0"}
        self.procs["worker"] = Proc(
            "worker",
            [str(VENV_BIN / "celery"), "-A", "orderflow", "worker", "-l", "WARNING",
             "-c", str(procs), "-n", "bench@%h", "--without-gossip", "--without-mingle", "-I", "bench.noop"],
            env,
        ).start()  # fmt: skip
        w = self.procs["worker"]
        common.wait_for(lambda: ready.exists() or not w.alive(), 60, message="celery worker ready")
        if not w.alive():
            raise RuntimeError("worker died on start:\n" + w.tail())

    def stop_worker(self) -> None:
        if "worker" in self.procs:
            self.procs.pop("worker").stop(timeout=30)

    def wait_ready(self) -> None:
        common.wait_for(lambda: self._get(self.web_port, "/readyz") == 200, 60, message="/readyz")
        if self.daphne:
            common.wait_for(lambda: self._get(self.ws_port, "/healthz") == 200, 60, message="daphne")

    def stop(self) -> None:
        for name in ("web", "daphne", "worker", "beat", "outbox", "gateway"):
            if name in self.procs:
                self.procs.pop(name).stop()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -------------------------------------------------------------------------- helpers

    @staticmethod
    def _get(port: int, path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return 0

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.web_port}"

    def pids(self, name: str) -> list[int]:
        """The process and its children (gunicorn workers, prefork children)."""
        import psutil

        proc = self.procs.get(name)
        if proc is None or not proc.alive():
            return []
        root = psutil.Process(proc.pid)
        return [root.pid] + [c.pid for c in root.children(recursive=True)]

    def rss_mb(self, name: str) -> dict[int, float]:
        import psutil

        out = {}
        for pid in self.pids(name):
            with contextlib.suppress(psutil.Error):
                out[pid] = round(psutil.Process(pid).memory_info().rss / 1024 / 1024, 1)
        return out


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--worker-procs", type=int, default=2)
    args = parser.parse_args()
    stack = Stack(web_workers=args.web_workers, worker_procs=args.worker_procs)
    try:
        stack.start()
        say(f"API {stack.base_url}/api/v1/  websockets ws://{HOST}:{stack.ws_port}/ws/dashboard/")
        say(f"X-Store-ID: {stack.data['store']}  Authorization: Bearer {stack.data['key']}")
        say("Ctrl-C stops every process.")
        while all(p.alive() for p in stack.procs.values()):
            time.sleep(1)
        say("a process died: " + ", ".join(n for n, p in stack.procs.items() if not p.alive()))
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
