"""Where the web workers' time goes under ingest load: py-spy (sampling, attached to the running
gunicorn workers) while wrk drives `POST /api/v1/orders`, then the share of samples (inclusive)
spent in each suspect: connection set-up, auth hash, JSON parsing, validation, the idempotency
write, the reservation update, the publish, the response.

    .venv/bin/python bench/ingest.py --quick --profile     # or bench/run_all.py --profile
"""

from __future__ import annotations

import collections
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench import wrkrun
from bench.common import RESULTS, say

# label → substrings of py-spy frames ("function (path/file.py:line)")
SUSPECTS: list[tuple[str, tuple[str, ...]]] = [
    ("whole request (sync part: middleware, view, on_commit)", ("RequestLogMiddleware.__call__ (",)),
    ("DB connect (new connection per request)", ("get_new_connection (",)),
    ("tenancy middleware (store + key lookup)", ("resolve (orderflow/core/tenancy.py",)),
    ("  of which: API key hash (HMAC)", ("hash_api_key (",)),
    ("throttle (Redis)", ("allow_request (orderflow/core/tenancy.py",)),
    ("JSON parsing (DRF JSONParser)", ("parse (rest_framework/parsers.py",)),
    ("serializer validation", ("is_valid (rest_framework/serializers.py",)),
    ("idempotency fingerprint", ("fingerprint (orders/idempotency.py",)),
    ("place_order (the transaction)", ("_place_order_once (orders/services.py",)),
    ("  idempotency claim (INSERT)", ("claim (orders/idempotency.py",)),
    ("  catalogue lookup", ("catalogue_for_skus (",)),
    ("  order number (sequence)", ("_next_order_number (",)),
    ("  order + lines INSERT", ("save (django/db/models/base.py", "bulk_create (")),
    ("  reservation UPDATE + ledger", ("reserve_stock (",)),
    ("  event INSERT (emit)", ("emit (orderflow/core/events.py",)),
    ("  response bytes (order_json)", ("order_json (",)),
    ("  idempotency complete (UPDATE)", ("complete (orders/idempotency.py",)),
    ("COMMIT (waiting for the WAL flush)", ("Connection.commit (psycopg/connection.py",)),
    ("publish after commit (Celery messages)", ("publish (orderflow/core/events.py",)),
    ("  live push (channel layer)", ("push_events (",)),
    ("  card to the vault (Redis)", ("_vault_card (",)),
]


WORKER_SUSPECTS: list[tuple[str, tuple[str, ...]]] = [
    ("inside a task (Celery's trace_task)", ("trace_task (celery/app/trace.py",)),
    ("run_handler (event → handler, dedupe row)", ("run_handler_once (orderflow/core/events.py",)),
    ("  webhook fan-out handler", ("fan_out_to_webhooks (",)),
    ("  other alerts handlers", ("alerts/receivers.py",)),
    ("fraud check", ("screen (fraud/services.py",)),
    ("charge (payments)", ("attempt_charge (payments/services.py",)),
    ("  gateway HTTP call", ("create_charge (payments/gateway.py",)),
    (
        "fulfillment start + autopilot steps",
        ("start_fulfillment (fulfillment/services.py", "autopilot_advance ("),
    ),
    ("stock commit", ("commit_stock (inventory/services.py",)),
    ("event INSERT (write_event)", ("write_event (orderflow/core/events.py",)),
    ("COMMIT (waiting for the WAL flush)", ("Connection.commit (psycopg/connection.py",)),
    ("waiting on PostgreSQL (any statement)", ("Connection.wait (psycopg/connection.py",)),
    ("Redis round trips (broker, cache, layer)", ("redis/connection.py", "redis/_parsers")),
    ("new DB connection", ("Connection.connect (psycopg/connection.py",)),
]

# Each sample goes to the first layer any of its frames is in (exclusive: the shares add up to 100):
# the driver's part of a statement is the driver's, not the ORM's that called it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("the driver (psycopg)", ("psycopg/", "psycopg_pool/")),
    ("the ORM (django/db, outside the driver)", ("django/db/",)),
    ("the HTTP client (requests, urllib3)", ("requests/", "urllib3/", "http/client.py")),
    ("the Redis client", ("redis/",)),
]
OTHER_LAYER = "the rest (our code, Celery, Django outside the ORM)"
TASK_FRAME = "trace_task (celery/app/trace.py"


def _collapsed(path: Path) -> list[tuple[list[str], int]]:
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            rows.append((stack.split(";"), int(count)))
    return rows


def summarise(files: list[Path], suspects: list[tuple[str, tuple[str, ...]]] | None = None) -> dict[str, Any]:
    rows = [r for f in files for r in _collapsed(f)]
    total = sum(c for _, c in rows) or 1
    shares: dict[str, float] = {}
    for label, needles in suspects or SUSPECTS:
        hit = sum(c for frames, c in rows if any(n in fr for fr in frames for n in needles))
        shares[label] = round(100 * hit / total, 1)
    # the hottest leaf functions (self time)
    leaves: collections.Counter[str] = collections.Counter()
    for frames, c in rows:
        leaves[frames[-1]] += c
    top = [(f, round(100 * c / total, 1)) for f, c in leaves.most_common(12)]
    return {"samples": total, "shares_pct": shares, "top_self_pct": top, "layers_pct": layers(rows)}


def layers(rows: list[tuple[list[str], int]]) -> dict[str, float]:
    """The samples inside a task (all of them if none is) split by LAYERS (exclusive, adds up to 100)."""
    in_task = [(frames, c) for frames, c in rows if any(TASK_FRAME in fr for fr in frames)]
    rows = in_task or rows
    total = sum(c for _, c in rows) or 1
    counts: collections.Counter[str] = collections.Counter()
    for frames, c in rows:
        label = next(
            (label for label, needles in LAYERS if any(n in fr for fr in frames for n in needles)),
            OTHER_LAYER,
        )
        counts[label] += c
    return {label: round(100 * counts[label] / total, 1) for label, _ in [*LAYERS, (OTHER_LAYER, ())]}


def profile_web(stack, *, seconds: float = 10, concurrency: int = 32) -> dict[str, Any]:
    pyspy = shutil.which("py-spy") or str(Path(__import__("sys").executable).parent / "py-spy")
    if not Path(pyspy).exists():
        say("py-spy not installed (pip install -r requirements-dev.txt): no profile")
        return {}
    pids = stack.pids("web")[1:]  # the gunicorn workers (not the arbiter)
    RESULTS.mkdir(parents=True, exist_ok=True)
    files, spies = [], []
    for pid in pids:
        out = RESULTS / f"profile-web-{pid}.txt"
        files.append(out)
        spies.append(
            subprocess.Popen(
                [pyspy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "250",
                 "--format", "raw", "--nonblocking", "-o", str(out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
    run = wrkrun.run(
        port=stack.web_port,
        script="orders.lua",
        concurrency=concurrency,
        seconds=seconds + 1,
        store=stack.data["store"],
        key=stack.data["key"],
        nskus=stack.data["skus"],
        seed=4242,
        expected=202,
    )
    for s in spies:
        s.wait(seconds + 30)
    files = [f for f in files if f.exists()]
    if not files:
        return {}
    summary = summarise(files)
    summary["ingest_rps_while_profiled"] = round(run["rps"], 1)
    say(f"  profile ({summary['samples']} samples, orders/s under py-spy {run['rps']:.0f}):")
    for label, pct in summary["shares_pct"].items():
        say(f"    {pct:5.1f}%  {label}")
    say("    hottest leaves: " + "; ".join(f"{p}% {f[:70]}" for f, p in summary["top_self_pct"][:6]))
    for f in files:
        f.unlink(missing_ok=True)
    return summary


def record(pids: list[int], seconds: float, tag: str, *, blocking: bool = False) -> list[subprocess.Popen]:
    """Start py-spy on each pid; returns the processes to wait for. Non-blocking sampling (the
    process is never paused) cannot tell a thread waiting on a socket from one running, so its
    shares are of wall time; `blocking` pauses the process for each sample and leaves the idle
    samples out: shares of CPU."""
    pyspy = shutil.which("py-spy") or str(Path(__import__("sys").executable).parent / "py-spy")
    if not Path(pyspy).exists():
        return []
    RESULTS.mkdir(parents=True, exist_ok=True)
    spies = []
    for pid in pids:
        out = RESULTS / f"profile-{tag}-{pid}.txt"
        out.unlink(missing_ok=True)
        spies.append(
            subprocess.Popen(
                [pyspy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200",
                 "--format", "raw", *([] if blocking else ["--nonblocking"]), "-o", str(out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
    return spies


def collect(spies: list[subprocess.Popen], tag: str, seconds: float) -> dict[str, Any]:
    for s in spies:
        s.wait(seconds + 30)
    files = sorted(RESULTS.glob(f"profile-{tag}-*.txt"))
    if not files:
        return {}
    summary = summarise(files, WORKER_SUSPECTS)
    say(f"  worker profile ({summary['samples']} samples, inclusive share):")
    for label, pct in summary["shares_pct"].items():
        say(f"    {pct:5.1f}%  {label}")
    say(
        "  by layer (exclusive): "
        + "; ".join(f"{pct}% {label}" for label, pct in summary["layers_pct"].items())
    )
    for f in files:
        f.unlink(missing_ok=True)
    return summary
