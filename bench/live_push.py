"""Live push: 200 websocket clients on the dashboard (daphne) while orders flow through the
pipeline; p95 from event commit (`event.created_at` in the pushed message) to client receipt, and
messages missed: every client should receive every event the store committed in the window.

The clients run in their own process (bench/ws_clients.py). Orders are submitted at a fixed rate
(`--rate` orders/s for `--seconds`), the pipeline drains, then the clients stop and the events
committed for the store in the window are compared with what each client received.

    .venv/bin/python bench/live_push.py [--quick] [--clients 200] [--rate 2] [--seconds 30]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, orders_load
from bench.common import BENCH, RESULTS, ROOT, percentile, say
from bench.stack import Stack


def run(args: argparse.Namespace, settings: str | None = None) -> dict[str, Any]:
    """`settings`: another DJANGO_SETTINGS_MODULE for the stack (an A/B run, e.g. bench.settings_pubsub)."""
    from orderflow.core.events import Event

    seconds = args.seconds or (10 if args.quick else 30)
    rate = args.rate
    n_orders = int(seconds * rate)
    extra = {"DJANGO_SETTINGS_MODULE": settings} if settings else {}
    stack = Stack(beat=True, daphne=True, workers_running=True, worker_procs=2, extra_env=extra)
    out_file = RESULTS / "ws-clients.json"
    RESULTS.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "clients": args.clients, "rate": rate, "seconds": seconds, "orders": n_orders, "settings": settings
    }  # fmt: skip
    try:
        stack.start()
        clients = subprocess.Popen(
            [sys.executable, str(BENCH / "ws_clients.py"), "--port", str(stack.ws_port), "--store",
             stack.data["store"], "--session", stack.data["session"], "--clients", str(args.clients),
             "--out", str(out_file)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        line = clients.stdout.readline().strip()
        connected = int(line.split()[1]) if line.startswith("READY") else 0
        say(f"live push: {connected}/{args.clients} clients connected; {n_orders} orders at {rate:g}/s")
        time.sleep(1)
        window_start = datetime.now(UTC)
        first_id = Event.all_stores.order_by("-id").values_list("id", flat=True).first() or 0
        sub = orders_load.submit(
            stack, count=n_orders, prefix=f"lp{int(time.time())}", concurrency=4, rate=rate
        )
        # let the pipeline finish: no event for 3 s and empty queues
        from bench.pipeline import queued_messages

        last, quiet_since = None, time.monotonic()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            top = Event.all_stores.order_by("-id").values_list("id", flat=True).first()
            if top != last:
                last, quiet_since = top, time.monotonic()
            elif time.monotonic() - quiet_since > 3 and queued_messages() == 0:
                break
            time.sleep(0.5)
        time.sleep(2)  # the last pushes are in flight
        clients.stdin.write("stop\n")
        clients.stdin.flush()
        clients.wait(120)
        import json

        got = json.loads(out_file.read_text())
        out_file.unlink(missing_ok=True)
        expected = set(
            Event.all_stores.filter(
                store_id=stack.data["store_id"], id__gt=first_id, created_at__gte=window_start
            ).values_list("id", flat=True)
        )
        missed = 0
        per_client_missed = []
        for ids in got["events"].values():
            m = len(expected - set(ids))
            per_client_missed.append(m)
            missed += m
        missing_clients = args.clients - len(got["events"])
        missed += missing_clients * len(expected)
        lat = got["latencies"]
        result.update(
            {
                "connected": got["connected"],
                "submit": sub,
                "events_committed": len(expected),
                "messages_expected": len(expected) * args.clients,
                "messages_received": len(lat),
                "missed": missed,
                "clients_missing_any": sum(1 for m in per_client_missed if m) + missing_clients,
                "p50_ms": round(1000 * percentile(lat, 50), 1),
                "p95_ms": round(1000 * percentile(lat, 95), 1),
                "p99_ms": round(1000 * percentile(lat, 99), 1),
                "max_ms": round(1000 * max(lat), 1) if lat else None,
                "event_rate": round(len(expected) / seconds, 1),
            }
        )
        say(
            f"  {result['events_committed']} events committed ({result['event_rate']}/s), "
            f"{result['messages_received']} of {result['messages_expected']} pushes received; "
            f"commit→receipt p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, "
            f"p99 {result['p99_ms']} ms; "
            f"MISSED {missed} (clients missing any: {result['clients_missing_any']})"
        )
    finally:
        stack.stop()
    return result


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rate", type=float, default=2.0, help="orders per second while measuring")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--settings", default=None, help="e.g. bench.settings_pubsub (A/B run)")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_args(parser)
    args = parser.parse_args()
    common.django_setup()
    result = run(args, settings=args.settings)
    common.save_json("live-push-last", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
