"""Browser fixtures: the app served by a real Daphne (HTTP + websockets) on the test database,
and Debian's Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, wait_until

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
PASSWORD = "browser-pw"


class Daphne:
    """`daphne orderflow.asgi:application` on a free port, against the test database; its
    stdout and stderr go to `log` (tests read it for server errors)."""

    def __init__(self, env: dict):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"of-daphne-{os.getpid()}-{time.time_ns()}.log"
        self._logf = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [
                str(ROOT / ".venv" / "bin" / "daphne"),
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "orderflow.asgi:application",
            ],
            cwd=ROOT,
            env={**env, "DJANGO_SETTINGS_MODULE": "orderflow.settings_test"},
            stdout=self._logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(self._up, 30, message="daphne /healthz")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError("daphne died:\n" + self.output()[-3000:])
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._logf.close()


@pytest.fixture(scope="session")
def daphne_url(worker_env):
    """The browser suite's server (one per session)."""
    server = Daphne(worker_env)
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def chromium():
    """Playwright's sync API keeps an event loop running in this thread, which trips Django's
    async-safety check on every ORM call the test makes; the check is lifted only while the
    browser module runs (module scope), then restored for the rest of the session."""
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def open_page(chromium, daphne_url):
    """Factory: open_page(username, color_scheme="light") → a logged-in Playwright page."""
    contexts = []

    def open_(username: str, *, color_scheme: str = "light", width: int = 1360, height: int = 900):
        ctx = chromium.new_context(
            color_scheme=color_scheme, viewport={"width": width, "height": height}, base_url=daphne_url
        )
        ctx.set_default_timeout(15_000)
        contexts.append(ctx)
        page = ctx.new_page()
        page.goto("/admin/login/?next=/dashboard/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url("**/dashboard/**")
        return page

    yield open_
    for ctx in contexts:
        ctx.close()


def screenshot(page, name: str, *, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
