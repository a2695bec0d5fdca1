"""`make run` in embedded mode: the whole stack comes up, answers /readyz, and Ctrl-C stops it all."""

import os
import signal
import subprocess
import tempfile
import urllib.request

import pytest

from orderflow.core.secrets import DEVELOPMENT_VALUES
from tests.conftest import ROOT, free_port, wait_until


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


@pytest.mark.integration
def test_make_run_serves_readyz_and_ctrl_c_stops_every_process():
    tmp = tempfile.mkdtemp(prefix="of-make-run-")
    web, gw = free_port(), free_port()
    # nothing of the test settings: make run brings its own secrets (var/secrets.env) and http switches
    own = {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", *DEVELOPMENT_VALUES}
    env = {k: v for k, v in os.environ.items() if k not in own and "SECURE" not in k}
    env.update(
        SQLITE_PATH=os.path.join(tmp, "orderflow.sqlite3"),
        EMBEDDED_REDIS="1",
        EMBEDDED_REDIS_SOCKET=os.path.join(tmp, "redis.sock"),
        WEB_PORT=str(web),
        GATEWAY_PORT=str(gw),
        WORKER_CONCURRENCY="1",
    )
    log = open(os.path.join(tmp, "make-run.log"), "wb")
    proc = subprocess.Popen(["make", "run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    try:
        wait_until(lambda: _status(f"http://127.0.0.1:{web}/readyz") == 200 or proc.poll() is not None, 240,
                   every=1, message="/readyz from make run")  # fmt: skip
        output = open(log.name, errors="replace").read()
        assert proc.poll() is None, output[-3000:]
        assert "mode: embedded" in output
        assert "API key" in output and "login:" in output
        assert _status(f"http://127.0.0.1:{web}/admin/login/") == 200
        assert _status(f"http://127.0.0.1:{web}/api/docs/") == 200
        assert _status(f"http://127.0.0.1:{gw}/health") == 200
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    wait_until(lambda: _status(f"http://127.0.0.1:{web}/healthz") == 0, 30, message="web server gone")
    wait_until(lambda: _status(f"http://127.0.0.1:{gw}/health") == 0, 30, message="gateway gone")
    leftovers = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert leftovers == [], f"processes left running after Ctrl-C: {leftovers}"
