"""Run wrk (the load generator, a separate process on loopback) with a bench Lua script and parse
the one `BENCH {json}` line its done() prints."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

from bench.common import BENCH, HOST

# BENCH_NO_WRK=1 forces the Python fallback (to check it, or to compare generators)
WRK = None if os.environ.get("BENCH_NO_WRK") == "1" else shutil.which("wrk")


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
        return _python_fallback(port=port, script=script, concurrency=concurrency, seconds=seconds,
                                store=store, key=key, nskus=nskus, seed=seed)  # fmt: skip
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
    res["generator"] = "wrk"
    res["rps"] = res["good"] / dur if dur else 0.0
    res["errors"] = (
        res["bad"] + res["connect_errors"] + res["read_errors"] + res["write_errors"] + res["timeouts"]
    )
    for p in ("p50", "p90", "p95", "p99"):
        res[f"{p}_ms"] = res[f"{p}_us"] / 1000
    return res


def _python_fallback(*, port, script, concurrency, seconds, store, key, nskus, seed) -> dict[str, Any]:
    """No wrk here: bench/loadgen.py (asyncio, its own process) for the same time and connections.
    Slower than wrk per request, so its figures are lower bounds; the results say which ran."""
    import sys
    import uuid

    cmd = [
        sys.executable, str(BENCH / "loadgen.py"), "--port", str(port), "--store", store, "--key", key,
        "--duration", str(seconds), "--concurrency", str(concurrency), "--seed", str(seed),
        "--nskus", str(nskus), "--prefix", f"py{seed}-{uuid.uuid4().hex[:8]}",
    ]  # fmt: skip
    if script == "store.lua":
        cmd.append("--empty")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("{")), None)
    if line is None:
        raise RuntimeError(f"loadgen printed nothing:\n{out.stdout}\n{out.stderr[-2000:]}")
    r = json.loads(line)
    sent = r["sent"]
    return {
        "generator": "python",
        "requests": sent,
        "good": r["ok"],
        "bad": sum(r["statuses"].values()) - r["ok"],
        "last_bad_status": max(
            (int(k) for k in r["statuses"] if int(k) != (200 if script == "store.lua" else 202)), default=0
        ),
        "seconds": r["elapsed_s"],
        "rps": r["ok"] / r["elapsed_s"] if r["elapsed_s"] else 0.0,
        "errors": (sum(r["statuses"].values()) - r["ok"]) + r["socket_errors"],
        "p50_ms": r["p50_ms"],
        "p90_ms": r["p95_ms"],
        "p95_ms": r["p95_ms"],
        "p99_ms": r["p99_ms"],
    }
