"""`make run` in embedded mode, as a newcomer meets it: the whole stack comes up on the ports it is
given, the README's example runs verbatim against it, the key it prints survives a restart, and a
signal to the `make` process alone (SIGTERM, then SIGINT) stops every process it started.

Two starts of the stack in all (one per signal), so the checks share them."""

import json
import os
import re
import runpy
import signal
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import psutil
import pytest

from orderflow.core.secrets import DEVELOPMENT_VALUES
from tests.conftest import ROOT, free_port, wait_until

README_MARKER = "<!-- readme-example -->"


def _status(url: str, headers: dict | None = None) -> int:
    return _get(url, headers)[0]


def _get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


def readme_examples() -> list[str]:
    """The fenced ```bash blocks right after a `<!-- readme-example -->` marker in README.md."""
    text = (Path(ROOT) / "README.md").read_text()
    blocks = re.findall(re.escape(README_MARKER) + r"\s*```bash\n(.*?)```", text, flags=re.S)
    assert blocks, "README.md has no example marked for this test"
    return blocks


class Stack:
    """One `make run` in its own session, with its own SQLite file, embedded Redis and ports."""

    def __init__(self, tmp: str):
        self.tmp, self.web, self.gw = tmp, free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.web}"
        # nothing of the test settings: make run brings its own secrets (var/secrets.env) and http switches
        own = {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "PUBLIC_BASE_URL",
               "CSRF_TRUSTED_ORIGINS", *DEVELOPMENT_VALUES}  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k not in own and "SECURE" not in k}
        env.update(
            SQLITE_PATH=os.path.join(tmp, "orderflow.sqlite3"),
            EMBEDDED_REDIS="1",
            EMBEDDED_REDIS_SOCKET=os.path.join(tmp, "redis.sock"),
            DEV_API_KEY_FILE=os.path.join(tmp, "dev-api-key"),
            WEB_PORT=str(self.web),
            GATEWAY_PORT=str(self.gw),
            WORKER_CONCURRENCY="1",
        )
        self.log = os.path.join(tmp, f"make-run-{self.web}.log")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(["make", "run"], cwd=ROOT, env=env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        wait_until(lambda: _status(f"{self.base}/readyz") == 200 or self.proc.poll() is not None, 240,
                   every=1, message="/readyz from make run")  # fmt: skip
        assert self.proc.poll() is None, self.output[-3000:]

    @property
    def output(self) -> str:
        return open(self.log, errors="replace").read()

    @property
    def key(self) -> str:
        return re.search(r"Authorization: Bearer (of_\S+)", self.output).group(1)

    def api(self, path: str) -> tuple[int, dict]:
        headers = {"X-Store-ID": "demo-books", "Authorization": f"Bearer {self.key}"}
        status, body = _get(f"{self.base}{path}", headers)
        return status, json.loads(body or b"null")

    def stop_with(self, sig: int) -> None:
        """Send `sig` to the make process alone; every process that was in its tree must be gone."""
        make = psutil.Process(self.proc.pid)
        tree = [make, *make.children(recursive=True)]
        names = {p.pid: " ".join(p.cmdline()[:3]) for p in tree if p.is_running()}
        assert len(tree) >= 6, names  # make, run_stack, honcho and the Procfile's processes
        os.kill(self.proc.pid, sig)
        try:
            self.proc.wait(60)
        finally:
            _, alive = psutil.wait_procs(tree, timeout=30)
            for p in alive:
                p.kill()
        left = [names.get(p.pid) for p in alive]
        assert left == [], f"left running after {signal.Signals(sig).name}: {left}"
        assert _status(f"{self.base}/healthz") == 0 and _status(f"http://127.0.0.1:{self.gw}/health") == 0

    def kill_all(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.integration
def test_make_run_serves_the_readme_example_keeps_its_key_and_stops_on_sigterm_and_sigint():
    tmp = tempfile.mkdtemp(prefix="of-make-run-")
    first = Stack(tmp)
    try:
        out = first.output
        assert "mode: embedded" in out and "login:" in out
        # every printed URL is on the ports it was given
        assert f"{first.base}/api/v1/" in out and f"{first.base}/dashboard/" in out
        assert f"http://127.0.0.1:{first.gw}/__control" in out and ":8000" not in out
        assert _status(f"{first.base}/admin/login/") == 200
        assert _status(f"{first.base}/api/docs/") == 200
        assert _status(f"http://127.0.0.1:{first.gw}/health") == 200

        for block in readme_examples():  # verbatim but for the key and the port
            script = re.sub(r"(?m)^KEY=.*$", f"KEY={first.key}", block)
            script = script.replace("http://127.0.0.1:8000", first.base)
            run = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp, capture_output=True,
                                 text=True, timeout=120)  # fmt: skip
            assert run.returncode == 0, run.stdout + run.stderr
            assert "HTTP 202" in run.stdout, run.stdout + run.stderr
        order = json.loads((Path(tmp) / "order.json").read_text())
        assert order["status"] == "pending" and order["tracking_url"].startswith(f"{first.base}/track/")
        wait_until(lambda: first.api(f"/api/v1/orders/{order['id']}")[1]["status"] in
                   {"paid", "fulfilling", "ready_to_ship", "shipped", "delivered"}, 90, every=1,
                   message="the README's order paid and on its way")  # fmt: skip
        key = first.key
        first.stop_with(signal.SIGTERM)
    finally:
        first.kill_all()

    second = Stack(tmp)  # same database, same key file, other ports
    try:
        assert second.key == key
        status, store = second.api("/api/v1/store")
        assert status == 200 and store["slug"] == "demo-books"
        assert f"{second.base}/api/v1/" in second.output
        second.stop_with(signal.SIGINT)
    finally:
        second.kill_all()


def test_public_base_url_and_csrf_origins_follow_web_port(monkeypatch):
    """Settings derive both from WEB_PORT unless given (what make run and a bare `manage.py` see)."""
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    monkeypatch.delenv("CSRF_TRUSTED_ORIGINS", raising=False)
    monkeypatch.setenv("WEB_PORT", "8123")
    monkeypatch.setenv("DEBUG", "1")
    settings = runpy.run_path(str(Path(ROOT) / "orderflow" / "settings.py"))
    assert settings["PUBLIC_BASE_URL"] == "http://127.0.0.1:8123"
    assert settings["CSRF_TRUSTED_ORIGINS"] == ["http://127.0.0.1:8123", "http://localhost:8123"]
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://shop.example.com")
    settings = runpy.run_path(str(Path(ROOT) / "orderflow" / "settings.py"))
    assert settings["PUBLIC_BASE_URL"] == "https://shop.example.com"
    assert settings["CSRF_TRUSTED_ORIGINS"][0] == "https://shop.example.com"
