"""Pipeline: N orders end to end through the Celery workers, against a chain of the same number of
no-op tasks per order through the same broker and workers.

For 1 worker process, one per core and two per core (prefork `-c`; two per core is deploy/run-role's
default; 1, 2 and 4 on 2 cores): the worker is stopped, the database vacuumed and analysed as
autovacuum would keep it (`common.vacuum_analyze`), N orders are accepted over
HTTP (their `order.created` messages wait in Redis), the worker starts and the clock runs from its
`worker_ready` until every order is `ready_to_ship` and until every order is `shipped` (the
autopilot's last step; the carrier simulator is off, so that is where a journey ends here). Gateway
latency 0, autopilot steps without wait. Every task the workers run is counted by name
(bench/noop.py's task_postrun hook), which gives K = tasks per order; the registry's view
(events per order × handlers per topic + the steps' own tasks) is printed beside it.

Then, same broker, same worker, same `-c`: N chains of K `bench.noop` tasks (each enqueues the
next, like a handler enqueueing its step), enqueued while the worker is stopped, timed from
`worker_ready` until the last chain ends. RATIO = pipeline orders/s ÷ no-op chains/s.

    .venv/bin/python bench/pipeline.py [--quick] [--orders 2000] [--procs 1 2 4]
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, orders_load
from bench.common import say
from bench.stack import Stack

REACHED_RTS = ["ready_to_ship", "shipped", "delivered"]
NEVER_PAID = ["payment_failed", "rejected", "cancelled", "expired"]
QUEUES = ["default", "orders", "payments", "fulfillment"]
# Worker processes (prefork -c) measured: one, one per core, and two per core (deploy/run-role's
# default). A charge waits on PostgreSQL, the gateway and Redis about half its time, so at one per
# core the cores sit partly idle.
_CORES = len(os.sched_getaffinity(0))
PROCS = list(dict.fromkeys([1, _CORES, 2 * _CORES]))


def _orders(stack: Stack, base_number: int):
    from orders.models import Order

    return Order.all_stores.filter(store_id=stack.data["store_id"], number__gt=base_number)


def top_number(stack: Stack) -> int:
    from django.db.models import Max

    from orders.models import Order

    return Order.all_stores.filter(store_id=stack.data["store_id"]).aggregate(m=Max("number"))["m"] or 0


def queued_messages() -> int:
    r = common.redis_client()
    return sum(r.llen(q) for q in QUEUES) + r.hlen("unacked")


def beat_task_names() -> set[str]:
    from django_celery_beat.models import PeriodicTask

    return set(PeriodicTask.objects.values_list("task", flat=True))


def task_counts(key: str | None = None) -> dict[str, int]:
    from bench.noop import TASK_COUNTS

    raw = common.redis_client().hgetall(key or TASK_COUNTS)
    return {k.decode(): int(v) for k, v in raw.items()}


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (0 for one that is gone)."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def database_backends() -> list[int]:
    """PostgreSQL's backend processes serving the bench database (but not this script's own)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cur.fetchall()]


class CpuMeter:
    """CPU seconds each part of the stack spends while the pipeline runs: the worker (pool and
    children), the outbox dispatcher, the mock gateway, beat, and PostgreSQL's backends for the
    bench database. Per order, these hold up on a shared box where orders/s do not."""

    PARTS = ("worker", "outbox", "gateway", "beat")

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.pids = {name: stack.pids(name) for name in self.PARTS}
        self.start = {name: cpu_seconds(p) for name, p in self.pids.items()}
        self.pg_start = {pid: cpu_seconds([pid]) for pid in database_backends()}

    def per_order_ms(self, orders: int) -> dict[str, float]:
        used = {name: cpu_seconds(p) - self.start[name] for name, p in self.pids.items()}
        used["postgres"] = sum(
            cpu_seconds([pid]) - self.pg_start.get(pid, 0.0) for pid in database_backends()
        )
        return {name: round(1000 * v / max(orders, 1), 2) for name, v in used.items()}


def registry_view(stack: Stack, base: int, n: int) -> dict[str, Any]:
    """What the handler registry says an order costs: events per order × handlers per topic."""
    from orderflow.core.events import Event, handlers_for

    ids = list(_orders(stack, base).values_list("pk", flat=True))
    events = Event.all_stores.filter(store_id=stack.data["store_id"], order_id__in=ids)
    topics = collections.Counter(events.values_list("topic", flat=True))
    per_topic, messages = {}, 0.0
    for t, c in sorted(topics.items()):
        sample = events.filter(topic=t).select_related("store").first()
        # a handler with a publish filter (`when`) costs a message only when it says yes
        sent = [
            h.name
            for h in handlers_for(t)
            if getattr(h, "when", None) is None or (sample is not None and h.wanted_for(sample))
        ]
        skipped = [h.name for h in handlers_for(t) if h.name not in sent]
        per_topic[t] = {"events_per_order": round(c / n, 2), "handlers": sent, "filtered_out": skipped}
        messages += c * len(sent)
    return {
        "events_per_order": round(sum(topics.values()) / n, 2),
        "handler_messages_per_order": round(messages / n, 2),
        "topics": per_topic,
    }


def wait_orders(stack: Stack, base: int, n: int, t0: float, timeout: float) -> dict[str, Any]:
    """Poll (two count queries each) until every order is paid (or ended unpaid), reached
    ready_to_ship, then shipped."""
    from django.db.models import Count

    t_paid = t_rts = t_shipped = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        by_status = dict(_orders(stack, base).values_list("status").annotate(n=Count("pk")).order_by())
        if t_paid is None:
            paid = _orders(stack, base).filter(paid_at__isnull=False).count()
            if paid + sum(by_status.get(s, 0) for s in NEVER_PAID) >= n:
                t_paid = time.monotonic() - t0
        rts = sum(by_status.get(s, 0) for s in REACHED_RTS)
        if t_rts is None and rts >= n:
            t_rts = time.monotonic() - t0
        if by_status.get("shipped", 0) + by_status.get("delivered", 0) >= n:
            t_shipped = time.monotonic() - t0
            break
        final_other = sum(v for s, v in by_status.items() if s not in REACHED_RTS)
        if t_rts is not None and final_other == n - rts and queued_messages() == 0:
            t_shipped = time.monotonic() - t0  # some orders ended elsewhere: nothing more will move
            break
        time.sleep(0.25)
    by_status = dict(_orders(stack, base).values_list("status").annotate(n=Count("pk")).order_by())
    return {
        "to_paid_s": t_paid,
        "to_ready_to_ship_s": t_rts,
        "to_shipped_s": t_shipped,
        "statuses": by_status,
    }


def fmt_s(seconds: float | None) -> str:
    return f"{seconds:.1f}s" if seconds is not None else "-"


def wait_drained(timeout: float = 120) -> None:
    common.wait_for(lambda: queued_messages() == 0, timeout, interval=0.5, message="queues drained")


def run_pipeline(stack: Stack, procs: int, n: int, tag: str, profile: bool = False) -> dict[str, Any]:
    from bench.noop import TASK_COUNTS, TASK_CPU_US

    stack.stop_worker()
    common.vacuum_analyze()
    base = top_number(stack)
    sub = orders_load.submit(stack, count=n, prefix=f"{tag}-p{procs}", concurrency=16, seed=procs)
    if sub["accepted"] != n:
        say(f"  warning: {sub['accepted']} of {n} orders accepted: {sub['statuses']}")
    common.redis_client().delete(TASK_COUNTS, TASK_CPU_US)
    stack.start_worker(procs)
    meter = CpuMeter(stack)
    t0 = time.monotonic()
    spies: list = []
    if profile:  # 15 s from the middle of the run, not the first burst of order.created handlers
        import threading

        from bench import profile as prof

        delay = min(120.0, n / 8)
        timer = threading.Timer(
            delay, lambda: spies.extend(prof.record(stack.pids("worker")[1:], 15, "worker"))
        )
        timer.start()
    done = wait_orders(stack, base, sub["accepted"], t0, timeout=max(600, n * 0.5))
    wait_drained()
    cpu_ms = meter.per_order_ms(sub["accepted"] or 1)
    counts = task_counts()
    cpu_us = task_counts(TASK_CPU_US)
    skip = beat_task_names() | {"bench.noop"}
    order_tasks = {k: v for k, v in counts.items() if k not in skip}
    accepted = sub["accepted"] or 1
    k = sum(order_tasks.values()) / accepted
    res = {
        "procs": procs,
        "orders": sub["accepted"],
        "submit": sub,
        **done,
        "tasks_by_name_per_order": {name: round(v / accepted, 2) for name, v in sorted(order_tasks.items())},
        "tasks_per_order": round(k, 2),
        # to shipped, per order: CPU ms of each process, and of the worker inside each task name
        "cpu_ms_per_order": cpu_ms,
        "task_cpu_ms_per_order": {
            name: round(cpu_us.get(name, 0) / 1000 / accepted, 2) for name in sorted(order_tasks)
        },
    }
    res["rate_paid"] = accepted / done["to_paid_s"] if done["to_paid_s"] else 0.0
    res["rate_shipped"] = accepted / done["to_shipped_s"] if done["to_shipped_s"] else 0.0
    res["rate_rts"] = accepted / done["to_ready_to_ship_s"] if done["to_ready_to_ship_s"] else 0.0
    res["registry"] = registry_view(stack, base, accepted)
    if profile:
        from bench import profile as prof

        timer.join()
        if spies:
            res["profile"] = prof.collect(spies, "worker", 15)
    return res


def run_noop(stack: Stack, procs: int, chains: int, k: int) -> dict[str, Any]:
    from bench.noop import CHAINS_DONE, noop

    stack.stop_worker()
    r = common.redis_client()
    r.delete(CHAINS_DONE)
    for _ in range(chains):
        noop.apply_async(args=[k, "default"], queue="default")
    stack.start_worker(procs)
    t0 = time.monotonic()
    common.wait_for(lambda: int(r.get(CHAINS_DONE) or 0) >= chains, max(600, chains * k * 0.05), interval=0.1,
                    message="no-op chains")  # fmt: skip
    elapsed = time.monotonic() - t0
    return {
        "chains": chains,
        "k": k,
        "seconds": elapsed,
        "rate": chains / elapsed,
        "tasks_per_s": chains * k / elapsed,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    n = args.orders or (300 if args.quick else 2000)
    result: dict[str, Any] = {"orders": n, "by_procs": {}}
    stack = Stack(beat=True, daphne=False, workers_running=False)
    try:
        stack.start()
        for procs in args.procs:
            say(f"pipeline: {n} orders, worker -c {procs}")
            p = run_pipeline(
                stack,
                procs,
                n,
                tag=f"pl{int(time.time())}",
                profile=getattr(args, "profile", False) and procs == 1,
            )
            k = max(1, round(p["tasks_per_order"]))
            say(
                f"  -c {procs}: all paid in {fmt_s(p['to_paid_s'])} ({p['rate_paid']:.1f} orders/s), "
                f"all ready_to_ship in {p['to_ready_to_ship_s']:.1f}s "
                f"({p['rate_rts']:.1f} orders/s), "
                f"all shipped in {p['to_shipped_s']:.1f}s ({p['rate_shipped']:.1f} orders/s); "
                f"{p['tasks_per_order']} tasks/order (registry: {p['registry']['events_per_order']} events, "
                f"{p['registry']['handler_messages_per_order']} handler messages per order); "
                f"statuses {p['statuses']}"
            )
            say(f"  -c {procs}: CPU ms per order, accepted to shipped: {p['cpu_ms_per_order']}; "
                f"worker CPU ms per order inside each task: {p['task_cpu_ms_per_order']}")  # fmt: skip
            nop = run_noop(stack, procs, p["orders"], k)
            ratio = p["rate_shipped"] / nop["rate"] if nop["rate"] else 0.0
            say(
                f"  -c {procs}: no-op chains of {k}: {nop['rate']:.1f} chains/s "
                f"({nop['tasks_per_s']:.0f} tasks/s) "
                f"| RATIO pipeline/no-op {ratio:.2f}"
            )
            result["by_procs"][procs] = {"pipeline": p, "noop": nop, "ratio": ratio}
    finally:
        stack.stop()
    return result


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--orders", type=int, default=None, help="N (default 2000; 300 with --quick)")
    parser.add_argument("--procs", type=int, nargs="*", default=PROCS)
    parser.add_argument("--profile", action="store_true", help="py-spy the worker (15 s of the -c 1 run)")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_args(parser)
    args = parser.parse_args()
    common.django_setup()
    result = run(args)
    common.save_json("pipeline-last", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
