"""Start bench/loadgen.py (its own process) against a running stack; read its JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from bench.common import BENCH, ROOT


def start(stack, *, count: int, prefix: str, concurrency: int = 16, rate: float = 0.0, seed: int = 1):
    cmd = [
        sys.executable, str(BENCH / "loadgen.py"), "--port", str(stack.web_port),
        "--store", stack.data["store"],
        "--key", stack.data["key"], "--count", str(count), "--concurrency", str(concurrency),
        "--rate", str(rate), "--prefix", prefix, "--seed", str(seed), "--nskus", str(stack.data["skus"]),
    ]  # fmt: skip
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc, timeout: float = 3600) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"loadgen failed ({proc.returncode}):\n{out}\n{err[-3000:]}")
    return json.loads(lines[-1])


def submit(stack, **kwargs) -> dict[str, Any]:
    return finish(start(stack, **kwargs))
