"""Cluster: pipeline orders/s to paid with 1, 2 and 4 worker hosts, each host a network namespace
of the cluster test's harness (tests/cluster/harness.py), its processes started from
deploy/Procfile.

Per host count: a fresh database; `web`, `rest` (the orders, fulfillment, webhooks and default
workers) and the worker hosts (deploy/Procfile's `worker-payments`, -c 2 each) up and idle; N
orders accepted over HTTP from the machine while the control host's dispatcher and beat are not
running (the orders' events wait in the outbox); then they start, and the clock runs from the
dispatcher's start until every order is paid (or failed).

On a 2-core machine the hosts share the two cores: more hosts add processes, not CPU. The figure
is the scaling shape and the cost per host (its prefork parent, its connections, the forwarder's
relaying), not a speed-up; a real second host brings its own cores.

    .venv/bin/python bench/cluster.py [--quick] [--orders 600] [--hosts 1 2 4]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.common import ROOT, say
from bench.loadgen import body
from bench.stack import Proc, free_port
from tests.cluster.harness import Cluster, place_orders, start_control, start_layout

AT_REST = ["paid", "fulfilling", "ready_to_ship", "shipped", "delivered", "payment_failed", "rejected"]
REST = ["worker-orders", "worker-fulfillment", "worker-webhooks", "worker-default"]


def measure(hosts: int, orders: int, gateway_url: str) -> dict[str, Any]:
    from orders.models import Order

    common.reset_database()
    common.django_setup()
    from bench import data

    seeded = data.seed()
    common.flush_redis()
    env = common.base_env(LOG_LEVEL="INFO", FULFILLMENT_AUTOPILOT="0", VENV_BIN=str(common.VENV_BIN))
    urls = {
        "DATABASE_URL": common.DATABASE_URL,
        "REDIS_URL": common.REDIS_URL,
        "CELERY_BROKER_URL": env.get("CELERY_BROKER_URL") or common.REDIS_URL,
        "GATEWAY_URL": gateway_url,
    }
    mine = Order.all_stores.filter(store_id=seeded["store_id"])
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with Cluster(env, urls, logs=ROOT / "var" / "bench" / f"cluster-{hosts}") as cluster:
        workers = {"rest": REST, **{f"w{i + 1}": ["worker-payments"] for i in range(hosts)}}
        base = start_layout(cluster, workers, control=False)
        rng = random.Random(hosts)
        bodies = [body(f"c{hosts}", i, rng, seeded["skus"]) for i in range(orders)]
        t = time.monotonic()
        place_orders(base, seeded["store"], seeded["key"], bodies)
        accept_s = time.monotonic() - t
        t0 = time.monotonic()
        start_control(cluster)
        common.wait_for(
            lambda: mine.filter(status__in=AT_REST).count() >= orders,
            1800,
            interval=0.5,
            message="every order paid or failed",
        )
        elapsed = time.monotonic() - t0
        rss = [host_rss_mb(cluster, cluster.hosts[name]) for name in workers if name != "rest"]
    paid = mine.filter(status__in=AT_REST[:5]).count()
    rate = orders / elapsed
    say(
        f"{hosts} worker host(s): {orders} orders accepted in {accept_s:.1f} s; {orders} paid or failed in "
        f"{elapsed:.1f} s from the dispatcher's start: {rate:.1f} orders/s ({paid} paid)"
    )
    return {
        "hosts": hosts,
        "orders": orders,
        "paid": paid,
        "seconds": round(elapsed, 1),
        "rate_paid": round(rate, 2),
        "rss_mb_per_worker_host": round(sum(rss) / len(rss), 1),
        "load_at_start": load,
        "accept_s": round(accept_s, 1),
    }


def host_rss_mb(cluster: Cluster, host) -> float:
    """What a host's processes hold in memory (RSS, summed)."""
    import psutil

    total = 0
    for pid in cluster.pids(host):
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def run(args: argparse.Namespace) -> dict[str, Any]:
    orders = args.orders or (150 if args.quick else 600)
    port = free_port()
    gateway = Proc(
        "gateway",
        [sys.executable, "-m", "mock_gateway", "--host", "127.0.0.1", "--port", str(port)],
        common.base_env(),
    ).start()
    try:
        by_hosts = {str(n): measure(n, orders, f"http://127.0.0.1:{port}") for n in args.hosts}
    finally:
        gateway.stop()
    one = by_hosts.get("1", {}).get("rate_paid")
    for r in by_hosts.values():
        r["vs_one_host"] = round(r["rate_paid"] / one, 2) if one else None
    return {"orders": orders, "by_hosts": by_hosts, "concurrency_per_host": 2}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--orders", type=int, default=None)
    parser.add_argument("--hosts", type=int, nargs="*", default=[1, 2, 4])
    args = parser.parse_args()
    common.django_setup()
    common.save_json("cluster", run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
