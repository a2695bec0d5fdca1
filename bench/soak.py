"""Soak: 20,000 orders through the whole pipeline (2 worker processes, beat, gateway at zero
latency, autopilot), resident memory (RSS) of the web and worker processes at the start (after a
warm-up) and at the end, and every order in a final state (or ready_to_ship / shipped, where the
autopilot stops when the carrier simulator is off) at the end.

The orders are submitted as fast as the web accepts them (8 connections) while the workers run;
the backlog waits in Redis. Memory is also sampled every 10 s (peak reported).

    .venv/bin/python bench/soak.py [--quick] [--orders 20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, orders_load
from bench.common import say
from bench.stack import Stack

SETTLED = {"ready_to_ship", "shipped", "delivered", "payment_failed", "cancelled", "rejected", "expired"}
GROUPS = ("web", "worker", "beat", "outbox")


def rss(stack: Stack) -> dict[str, dict[str, float]]:
    out = {}
    for g in GROUPS:
        per = stack.rss_mb(g)
        out[g] = {"total_mb": round(sum(per.values()), 1), "max_process_mb": max(per.values(), default=0),
                  "processes": len(per)}  # fmt: skip
    return out


def statuses(stack: Stack, base: int) -> dict[str, int]:
    from django.db.models import Count

    from orders.models import Order

    qs = Order.all_stores.filter(store_id=stack.data["store_id"], number__gt=base)
    return dict(qs.values_list("status").annotate(n=Count("pk")).order_by())


def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench.pipeline import queued_messages, top_number

    n = args.orders or (1000 if args.quick else 20000)
    stack = Stack(beat=True, daphne=False, workers_running=True, worker_procs=2)
    result: dict[str, Any] = {"orders": n}
    try:
        stack.start()
        say(f"soak: warm-up (100 orders), then {n} orders")
        warm_base = top_number(stack)
        orders_load.submit(stack, count=100, prefix=f"warm{int(time.time())}", concurrency=8)
        common.wait_for(lambda: sum(v for s, v in statuses(stack, warm_base).items() if s in SETTLED) >= 100,
                        600, interval=0.5, message="warm-up orders")  # fmt: skip
        common.wait_for(lambda: queued_messages() == 0, 600, interval=0.5, message="warm-up drained")
        base = top_number(stack)
        start_rss = rss(stack)
        peak = {g: start_rss[g]["total_mb"] for g in GROUPS}
        t0 = time.monotonic()
        proc = orders_load.start(stack, count=n, prefix=f"soak{int(time.time())}", concurrency=8)
        sub = None
        last_print = 0.0
        deadline = t0 + max(3600, n * 0.5)
        settled = 0
        while time.monotonic() < deadline:
            time.sleep(2)
            if sub is None and proc.poll() is not None:
                sub = orders_load.finish(proc)
                result["submit"] = sub
                result["submit_s"] = round(time.monotonic() - t0, 1)
                say(
                    f"  {sub['accepted']} accepted in {result['submit_s']}s ({sub['rate']}/s), "
                    f"statuses {sub['statuses']}"
                )
            now_rss = rss(stack)
            for g in GROUPS:
                peak[g] = max(peak[g], now_rss[g]["total_mb"])
            st = statuses(stack, base)
            settled = sum(v for s, v in st.items() if s in SETTLED)
            if time.monotonic() - last_print > 30:
                last_print = time.monotonic()
                say(
                    f"  t={time.monotonic() - t0:5.0f}s settled {settled}/{n} "
                    f"queued msgs {queued_messages()} "
                    f"RSS web {now_rss['web']['total_mb']} MB worker {now_rss['worker']['total_mb']} MB"
                )
            if sub is not None and settled >= sub["accepted"] and queued_messages() == 0:
                break
        elapsed = time.monotonic() - t0
        end_rss = rss(stack)
        st = statuses(stack, base)
        accepted = (sub or {}).get("accepted", 0)
        result.update(
            {
                "elapsed_s": round(elapsed, 1),
                "rate": round(accepted / elapsed, 2) if elapsed else 0,
                "rss_start": start_rss,
                "rss_end": end_rss,
                "rss_peak_total_mb": peak,
                "rss_growth_mb": {
                    g: round(end_rss[g]["total_mb"] - start_rss[g]["total_mb"], 1) for g in GROUPS
                },
                "statuses": st,
                "accepted": accepted,
                "unsettled": accepted - sum(v for s, v in st.items() if s in SETTLED),
            }
        )
        say(
            f"  {accepted} orders in {elapsed:.0f}s ({result['rate']} orders/s end to end); statuses {st}; "
            f"NOT SETTLED {result['unsettled']}"
        )
        for g in GROUPS:
            say(
                f"  RSS {g:6}: start {start_rss[g]['total_mb']} MB → end {end_rss[g]['total_mb']} MB "
                f"(growth {result['rss_growth_mb'][g]:+} MB, peak {peak[g]} MB, "
                f"{end_rss[g]['processes']} processes, "
                f"largest process {start_rss[g]['max_process_mb']} → {end_rss[g]['max_process_mb']} MB)"
            )
    finally:
        stack.stop()
    return result


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--orders", type=int, default=None, help="default 20000 (1000 with --quick)")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_args(parser)
    args = parser.parse_args()
    common.django_setup()
    result = run(args)
    common.save_json("soak-last", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
