"""Several hosts on one machine, simulated honestly: each host is a Linux network namespace whose
processes are started from deploy/Procfile's lines (through deploy/run-role), as a production
host's supervisor would start them. Used by the cluster test and by bench/cluster.py.

A host has loopback and one veth pair to the machine, with addresses the harness assigns
(10.213.<net>.<4i+2>/30 inside, .<4i+1> on the machine's side): nothing else is reachable from it.
PostgreSQL, Redis, the broker and the mock gateway listen on the machine's loopback only, so a
forwarder (`python -m tests.cluster.harness forward`, its own process) listens on each host's
machine-side address at their ports and relays to 127.0.0.1. The hosts' processes are given those
addresses in DATABASE_URL, REDIS_URL, CELERY_BROKER_URL and GATEWAY_URL; the web host is reached
from the machine at its own address.

Losing a host is `cut()` (its link down: nothing it sends arrives, nothing reaches it) then
`kill()` (SIGKILL to every process in its namespace). The forwarder's sockets toward the hosts play
the servers' side of each connection: TCP keepalive and TCP_USER_TIMEOUT of a few seconds (what a
production PostgreSQL/RabbitMQ gets from tcp_keepalives_* / heartbeats), so a lost host's
connections end upstream soon after its link is cut — PostgreSQL rolls back what it had open and
RabbitMQ requeues what it had unacked. (On Redis the unacked messages come back after the
visibility timeout, whoever is connected.)

Names carry the pid of the process that made them (`ofcl-<pid>-<host>`, veth `of<pid>h<i>`);
`cleanup_leftovers()` removes those of processes that are gone (a run killed before its cleanup).
Needs root (`ip netns`).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "ofcl-"
VETH = re.compile(r"^of(\d+)h\d+$")
NET = "10.213"
# The servers' side of a lost host's connections gives up after about this long (seconds).
KEEPALIVE = {"idle": 2, "interval": 1, "count": 3, "user_timeout_ms": 6000}


def ip(*args: str, check: bool = True) -> str:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True).stdout


def procfile(path: Path) -> dict[str, str]:
    """A Procfile's processes, name → command (comments and blank lines skipped)."""
    out = {}
    for line in path.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and not line.lstrip().startswith("#"):
            out[name.strip()] = command.strip()
    return out


DEPLOY = procfile(ROOT / "deploy" / "Procfile")


def netns_supported() -> bool:
    return os.geteuid() == 0 and subprocess.run(["ip", "netns", "list"], capture_output=True).returncode == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_netns_processes(netns: str) -> None:
    for pid in ip("netns", "pids", netns, check=False).split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def cleanup_leftovers() -> list[str]:
    """Namespaces and machine-side veths of runs whose process is gone; returns what was removed."""
    removed = []
    for line in ip("netns", "list").splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.match(rf"^{PREFIX}(\d+)-", name)
        if m and not _alive(int(m.group(1))):
            _kill_netns_processes(name)
            ip("netns", "del", name, check=False)
            removed.append(name)
    for line in ip("-o", "link", "show").splitlines():
        parts = line.split(":")
        name = parts[1].strip().split("@")[0] if len(parts) > 1 else ""
        m = VETH.match(name)
        if m and not _alive(int(m.group(1))):
            ip("link", "del", name, check=False)
            removed.append(name)
    return removed


def _free_net() -> int:
    """A third octet no address of this machine uses under 10.213/16."""
    used = set(re.findall(rf"inet {re.escape(NET)}\.(\d+)\.", ip("-4", "-o", "addr")))
    start = os.getpid() % 250
    for k in range(250):
        n = (start + k) % 250
        if str(n) not in used:
            return n
    raise RuntimeError(f"no free /24 under {NET}/16")


def via(url: str, address: str) -> str:
    """`url` with its host replaced by `address` (the port, credentials, path and query kept)."""
    parts = urlsplit(url)
    if not parts.hostname or parts.scheme.endswith("+socket") or parts.scheme == "unix":
        raise ValueError(f"cannot reach {url!r} from another host: it names no TCP host")
    netloc = parts.netloc.rsplit("@", 1)
    creds = netloc[0] + "@" if len(netloc) == 2 else ""
    return urlunsplit(parts._replace(netloc=f"{creds}{address}:{_port(url)}"))


def _port(url: str) -> int:
    parts = urlsplit(url)
    default = {"postgres": 5432, "postgresql": 5432, "redis": 6379, "amqp": 5672, "http": 80, "https": 443}
    return parts.port or default[parts.scheme.split("+")[0]]


@dataclass
class Host:
    name: str
    index: int
    netns: str
    veth: str
    gateway: str  # the machine-side address: the host's only way out
    address: str  # the host's own address
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    def log(self, role: str) -> str:
        return self.logs[role].read_text(errors="replace") if role in self.logs else ""


class Cluster:
    """Hosts in namespaces, the forwarder to the machine's services, the processes on the hosts.

    `urls`: the URLs the hosts' processes must reach (DATABASE_URL, REDIS_URL, CELERY_BROKER_URL,
    GATEWAY_URL — each on 127.0.0.1); every host gets them rewritten to its gateway address, and
    the forwarder serves each one's port there. Use as a context manager: everything it made is
    removed on exit, whatever happened."""

    def __init__(self, env: dict[str, str], urls: dict[str, str], *, logs: Path) -> None:
        self.env, self.urls, self.logdir = env, urls, logs
        self.hosts: dict[str, Host] = {}
        self.forwarder: subprocess.Popen | None = None
        self.net = None
        self.logdir.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> Cluster:
        cleanup_leftovers()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----------------------------------------------------------------------------------- hosts

    def add_hosts(self, names: Iterable[str]) -> list[Host]:
        """Make the namespaces (loopback, one veth pair each), then start the forwarder for them."""
        if self.net is None:
            self.net = _free_net()
        made = []
        for name in names:
            i = len(self.hosts)
            h = Host(
                name=name,
                index=i,
                netns=f"{PREFIX}{os.getpid()}-{name}",
                veth=f"of{os.getpid()}h{i}",
                gateway=f"{NET}.{self.net}.{4 * i + 1}",
                address=f"{NET}.{self.net}.{4 * i + 2}",
            )
            self.hosts[name] = h  # registered first: close() removes it even if a step below fails
            ip("netns", "add", h.netns)
            ip("-n", h.netns, "link", "set", "lo", "up")
            ip("link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.netns)
            ip("addr", "add", f"{h.gateway}/30", "dev", h.veth)
            ip("link", "set", h.veth, "up")
            ip("-n", h.netns, "addr", "add", f"{h.address}/30", "dev", "eth0")
            ip("-n", h.netns, "link", "set", "eth0", "up")
            made.append(h)
        self._start_forwarder()
        return made

    def _start_forwarder(self) -> None:
        if self.forwarder is not None:
            self.forwarder.terminate()
            self.forwarder.wait(10)
        ports = sorted({_port(url) for url in self.urls.values()})
        routes = [[h.gateway, p, "127.0.0.1", p] for h in self.hosts.values() for p in ports]
        log = open(self.logdir / "forwarder.log", "wb")
        self.forwarder = subprocess.Popen(
            [sys.executable, "-m", "tests.cluster.harness", "forward", json.dumps(routes)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log_path, proc = self.logdir / "forwarder.log", self.forwarder
        _wait(lambda: b"forwarding" in log_path.read_bytes() or proc.poll() is not None, 20, "the forwarder")
        if self.forwarder.poll() is not None:
            raise RuntimeError("forwarder died:\n" + (self.logdir / "forwarder.log").read_text()[-2000:])

    def host_env(self, host: Host, **extra: str) -> dict[str, str]:
        env = {**self.env, **{name: via(url, host.gateway) for name, url in self.urls.items()}}
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def start(self, host: Host, process: str, **env: str) -> subprocess.Popen:
        """Start deploy/Procfile's `process` on `host` (its command, as written there, with `env`
        over the host's environment), its output in the cluster's log directory."""
        command = DEPLOY[process]
        log = self.logdir / f"{host.name}.{process}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", host.netns, "sh", "-c", f"exec {command}"],
                cwd=ROOT, env=self.host_env(host, **env), stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        host.procs[process], host.logs[process] = proc, log
        return proc

    def wait_log(self, host: Host, process: str, fragment: str, timeout: float = 120) -> None:
        proc, log = host.procs[process], host.logs[process]
        _wait(lambda: fragment.encode() in log.read_bytes() or proc.poll() is not None, timeout,
              f"{process} on {host.name}")  # fmt: skip
        if proc.poll() is not None:
            raise RuntimeError(f"{process} on {host.name} died:\n" + log.read_text(errors="replace")[-3000:])

    def wait_http(self, url: str, timeout: float = 90) -> None:
        def up() -> bool:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        _wait(up, timeout, url)

    def cut(self, host: Host) -> None:
        """The host's link goes down: from now on nothing it sends arrives and nothing reaches it."""
        ip("link", "set", host.veth, "down")

    def pids(self, host: Host) -> list[int]:
        """Every process in the host's namespace."""
        return [int(pid) for pid in ip("netns", "pids", host.netns, check=False).split()]

    def kill(self, host: Host) -> int:
        """SIGKILL to every process in the host's namespace; returns how many there were."""
        pids = self.pids(host)
        _kill_netns_processes(host.netns)
        for proc in host.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        return len(pids)

    def close(self) -> None:
        for h in self.hosts.values():
            self.kill(h)
            ip("netns", "del", h.netns, check=False)
            ip("link", "del", h.veth, check=False)  # gone with its peer's namespace, unless that failed
        self.hosts.clear()
        if self.forwarder is not None and self.forwarder.poll() is None:
            self.forwarder.terminate()  # its upstream connections close with it
            try:
                self.forwarder.wait(10)
            except subprocess.TimeoutExpired:
                self.forwarder.kill()
        self.forwarder = None


# ------------------------------------------------------------------------------- the layout

WEB_PORT = 8080  # inside the web host's own namespace: no port of the machine is taken
READY = {"dispatcher": "dispatcher running", "beat": "beat: Starting"}  # workers: "ready."


def start_layout(
    cluster: Cluster, workers: dict[str, list[str]], *, concurrency: int = 2, control: bool = True
) -> str:
    """The hosts of an install and their processes, started at once and waited for together:
    `control` (the outbox dispatcher and beat; later, with `control=False`: `start_control`),
    `web`, and one host per `workers` entry running those deploy/Procfile worker processes
    (WORKER_CONCURRENCY=`concurrency` each). Returns the web host's base URL, as reached from the
    machine."""
    cluster.add_hosts(["control", "web", *workers])
    web = cluster.hosts["web"]
    base = f"http://{web.address}:{WEB_PORT}"
    cluster.start(web, "web", WEB_HOST=web.address, WEB_PORT=str(WEB_PORT),
                  ALLOWED_HOSTS=f"{web.address},127.0.0.1,localhost", PUBLIC_BASE_URL=base)  # fmt: skip
    started = []
    for name, processes in workers.items():
        for process in processes:
            start_worker(cluster, cluster.hosts[name], process, concurrency=concurrency, wait=False)
            started.append((cluster.hosts[name], process))
    if control:
        start_control(cluster, wait=False)
        started += [(cluster.hosts["control"], "dispatcher"), (cluster.hosts["control"], "beat")]
    for host, process in started:
        cluster.wait_log(host, process, READY.get(process, "ready."))
    cluster.wait_http(base + "/healthz")
    return base


def start_control(cluster: Cluster, *, wait: bool = True) -> None:
    """The control host's processes: the outbox dispatcher (until it runs, committed events wait
    in the outbox) and beat."""
    control = cluster.hosts["control"]
    for process in ("dispatcher", "beat"):
        cluster.start(control, process)
    for process in ("dispatcher", "beat") if wait else ():
        cluster.wait_log(control, process, READY[process])


def start_worker(
    cluster: Cluster, host: Host, process: str, *, concurrency: int = 2, wait: bool = True
) -> None:
    """A deploy/Procfile worker process on `host`, named for it (every namespace shares the
    machine's host name, so `%h` alone would not tell the hosts apart)."""
    cluster.start(host, process, WORKER_NAME=f"{process}@{host.name}", WORKER_CONCURRENCY=str(concurrency))
    if wait:
        cluster.wait_log(host, process, "ready.")


def place_orders(base: str, slug: str, key: str, bodies: list[bytes], *, concurrency: int = 16) -> list[dict]:
    """POST every body to `base`'s /api/v1/orders (its own Idempotency-Key each), `concurrency`
    at a time; returns the 202 answers' JSON in order. Fails on any other answer."""
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    import requests

    local = __import__("threading").local()

    def post(body: bytes) -> dict:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        headers = {"X-Store-ID": slug, "Authorization": f"Bearer {key}", "Content-Type": "application/json",
                   "Idempotency-Key": uuid.uuid4().hex}  # fmt: skip
        r = session.post(base + "/api/v1/orders", data=body, headers=headers, timeout=60)
        if r.status_code != 202:
            raise AssertionError(f"POST /api/v1/orders → {r.status_code}: {r.text[:300]}")
        return r.json()

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(post, bodies))


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# ------------------------------------------------------------------------------------ forwarder


class _Pipe(asyncio.Protocol):
    """One side of a relayed connection; writes what it reads to its peer, with back-pressure."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Pipe | None = None
        self.early: list[bytes] = []  # what arrived before the peer was connected

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)
        else:
            self.early.append(data)

    def connection_lost(self, exc) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()


def _server_side_timeouts(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE["idle"])
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE["interval"])
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE["count"])
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, KEEPALIVE["user_timeout_ms"])


async def _forward(routes: list[list]) -> None:
    loop = asyncio.get_running_loop()

    def serve(to_host: str, to_port: int):
        class Downstream(_Pipe):
            def connection_made(self, transport) -> None:
                super().connection_made(transport)
                _server_side_timeouts(transport.get_extra_info("socket"))
                transport.pause_reading()
                loop.create_task(self.dial())

            async def dial(self) -> None:
                try:
                    _, up = await loop.create_connection(_Pipe, to_host, to_port)
                except OSError:
                    self.transport.close()
                    return
                up.peer, self.peer = self, up
                if self.transport.is_closing():
                    up.transport.close()
                    return
                for data in self.early:
                    up.transport.write(data)
                self.early.clear()
                self.transport.resume_reading()

        return Downstream

    for listen_host, listen_port, to_host, to_port in routes:
        await loop.create_server(
            serve(to_host, to_port), listen_host, listen_port, reuse_address=True, backlog=1024
        )
    print("forwarding", len(routes), "routes", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str]) -> int:
    if argv[:1] == ["forward"]:
        try:
            import uvloop

            uvloop.install()
        except ImportError:  # pragma: no cover - plain asyncio does the same, a little slower
            pass
        asyncio.run(_forward(json.loads(argv[1])))
        return 0
    print("usage: python -m tests.cluster.harness forward '<routes json>'", file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
