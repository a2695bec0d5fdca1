"""Run wrk (the load generator, a separate process on loopback) with a bench Lua script and parse
the one `BENCH {json}` line its done() prints."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from bench.common import BENCH, HOST

WRK = shutil.which("wrk")


def available() -> bool:
    return WRK is not None


def run(
    *,
    port: int,
    script: str,
    concurrency: int,
    seconds: float,
    store: str,
    key: str,
    nskus: int,
    seed: int,
    expected: int,
    threads: int | None = None,
) -> dict[str, Any]:
    if WRK is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    threads = threads or (1 if concurrency < 16 else 2)
    cmd = [
        WRK, "-t", str(threads), "-c", str(concurrency), "-d", f"{seconds:g}s", "--timeout", "10s",
        "--latency", "-s", str(BENCH / "wrk" / script), f"http://{HOST}:{port}",
        "--", store, key, str(nskus), str(seed), str(expected),
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no BENCH line:\n{out.stdout}\n{out.stderr}")
    res = json.loads(line[len("BENCH ") :])
    dur = res["duration_us"] / 1e6
    res["seconds"] = dur
    res["rps"] = res["good"] / dur if dur else 0.0
    res["errors"] = (
        res["bad"] + res["connect_errors"] + res["read_errors"] + res["write_errors"] + res["timeouts"]
    )
    for p in ("p50", "p90", "p95", "p99"):
        res[f"{p}_ms"] = res[f"{p}_us"] / 1000
    return res
