"""Ingest: `POST /api/v1/orders` against the empty DRF endpoint `GET /api/v1/store`, same stack,
same middleware and authentication, wrk on loopback.

For each concurrency (8, 32, 128): a warm-up of each endpoint, then `--runs` alternating runs of
`--seconds` each; the median run's figures: accepted orders/s, p50/p95/p99, errors (non-202 /
non-200 and socket errors), and the ratio ingest ÷ empty. Orders: unique Idempotency-Key, 1–3
distinct lines from the 200-SKU catalogue. The Celery workers are stopped while it runs (the
queued messages wait in Redis), so both endpoints are measured on the same idle machine: this is
what the web tier accepts, not what the pipeline finishes (see pipeline.py).

Afterwards, in this process: SQL statements per order and per empty request (Django's
CaptureQueriesContext around one request through the test client on the bench database).

    .venv/bin/python bench/ingest.py [--quick] [--seconds 15] [--runs 3] [--compare-web-workers]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, wrkrun
from bench.common import median, say
from bench.stack import Stack

CONCURRENCY = [8, 32, 128]


def measure(stack: Stack, script: str, expected: int, c: int, seconds: float, seed: int) -> dict[str, Any]:
    return wrkrun.run(
        port=stack.web_port,
        script=script,
        concurrency=c,
        seconds=seconds,
        store=stack.data["store"],
        key=stack.data["key"],
        nskus=stack.data["skus"],
        seed=seed,
        expected=expected,
    )


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median throughput (its own latencies), plus the median of each figure."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    mid = ordered[len(ordered) // 2]
    return {
        "rps": median([r["rps"] for r in runs]),
        "p50_ms": median([r["p50_ms"] for r in runs]),
        "p95_ms": median([r["p95_ms"] for r in runs]),
        "p99_ms": median([r["p99_ms"] for r in runs]),
        "errors": sum(r["errors"] for r in runs),
        "last_bad_status": max(r["last_bad_status"] for r in runs),
        "runs_rps": [round(r["rps"], 1) for r in runs],
        "median_run": mid,
    }


def compare_web_workers(stack: Stack, seconds: float) -> dict[str, Any]:
    """2 vs 3 gunicorn workers on 2 cores, once, ingest at concurrency 32: keep the best."""
    out: dict[str, Any] = {}
    for workers in (2, 3):
        stack.start_web(workers)
        measure(stack, "orders.lua", 202, 32, 3, seed=900 + workers)  # warm-up
        r = measure(stack, "orders.lua", 202, 32, seconds, seed=910 + workers)
        e = measure(stack, "store.lua", 200, 32, seconds, seed=920 + workers)
        out[workers] = {"ingest_rps": round(r["rps"], 1), "empty_rps": round(e["rps"], 1)}
        say(f"  gunicorn -w {workers}: ingest {r['rps']:.1f}/s, empty {e['rps']:.1f}/s")
    best = max(out, key=lambda w: out[w]["ingest_rps"])
    out["best"] = best
    stack.start_web(best)
    return out


def count_queries(data: dict[str, Any]) -> dict[str, Any]:
    """SQL statements for one order and one empty request, in-process on the bench database."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from orderflow.core.tenancy import ApiKey

    ApiKey.objects.filter(prefix=data["key"].split("_")[1]).update(last_used_at=None)
    client = Client(HTTP_X_STORE_ID=data["store"], HTTP_AUTHORIZATION=f"Bearer {data['key']}")
    client.get("/api/v1/store")  # the key's last_used_at touch happens once a minute: not counted
    with CaptureQueriesContext(connection) as empty:
        r = client.get("/api/v1/store")
    assert r.status_code == 200, r.content
    out: dict[str, Any] = {"empty": len(empty.captured_queries)}
    for lines in (1, 3):
        body = {
            "customer": {"email": f"q{lines}@example.com", "name": "Query Count"},
            "items": [{"sku": f"BENCH-{i:04d}", "quantity": 1} for i in range(1, lines + 1)],
            "shipping_address": {
                "line1": "1 Main St",
                "city": "Berlin",
                "postal_code": "10115",
                "country": "DE",
            },
            "payment": {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
            "currency": "EUR",
        }
        with CaptureQueriesContext(connection) as ctx:
            r = client.post(
                "/api/v1/orders", json.dumps(body), content_type="application/json",
                HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
            )  # fmt: skip
        assert r.status_code == 202, r.content
        out[f"order_{lines}_lines"] = len(ctx.captured_queries)
        if lines == 3:
            out["order_statements"] = [_short(q["sql"]) for q in ctx.captured_queries]
    out["empty_statements"] = [_short(q["sql"]) for q in empty.captured_queries]
    return out


def _short(sql: str) -> str:
    sql = " ".join(sql.split())
    return sql if len(sql) < 140 else sql[:137] + "..."


def run(args: argparse.Namespace) -> dict[str, Any]:
    seconds = args.seconds or (5 if args.quick else 15)
    runs = args.runs or (1 if args.quick else 3)
    warmup = 2 if args.quick else 5
    concurrencies = args.concurrency or CONCURRENCY
    extra = {"web_workers": args.web_workers} if args.web_workers else {}
    stack = Stack(beat=False, daphne=False, workers_running=False, **extra)
    result: dict[str, Any] = {"seconds": seconds, "runs": runs, "concurrency": {}}
    try:
        stack.start()
        say(f"ingest: gunicorn -w {stack.web_workers}, workers stopped, {seconds:g}s × {runs} runs")
        if args.compare_web_workers:
            result["web_workers_compare"] = compare_web_workers(stack, 5 if args.quick else 10)
        result["web_workers"] = stack.web_workers
        seed = 1
        for c in concurrencies:
            measure(stack, "store.lua", 200, c, warmup, seed=seed)
            measure(stack, "orders.lua", 202, c, warmup, seed=seed + 1)
            empty, ingest = [], []
            for _ in range(runs):
                seed += 2
                empty.append(measure(stack, "store.lua", 200, c, seconds, seed=seed))
                ingest.append(measure(stack, "orders.lua", 202, c, seconds, seed=seed + 1))
            e, i = median_run(empty), median_run(ingest)
            ratio = i["rps"] / e["rps"] if e["rps"] else 0.0
            result["concurrency"][c] = {"empty": e, "ingest": i, "ratio": ratio}
            say(
                f"  c={c:<3} ingest {i['rps']:7.1f} orders/s  p50 {i['p50_ms']:6.1f} p95 {i['p95_ms']:6.1f} "
                f"p99 {i['p99_ms']:6.1f} ms  errors {i['errors']} | empty {e['rps']:7.1f}/s p50 "
                f"{e['p50_ms']:6.1f} p95 {e['p95_ms']:6.1f} p99 {e['p99_ms']:6.1f} ms errors {e['errors']}"
                f" | RATIO ingest/empty {ratio:.2f}"
            )
        result["queries"] = count_queries(stack.data)
        q = result["queries"]
        say(f"  SQL statements: order (1 line) {q['order_1_lines']}, order (3 lines) {q['order_3_lines']}, "
            f"empty request {q['empty']}")  # fmt: skip
        if args.profile:
            from bench import profile

            result["profile"] = profile.profile_web(stack, seconds=10 if not args.quick else 5)
    finally:
        stack.stop()
    return result


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--concurrency", type=int, nargs="*", default=None)
    parser.add_argument("--web-workers", type=int, default=None, help="gunicorn -w (default 2)")
    parser.add_argument("--compare-web-workers", action="store_true")
    parser.add_argument("--profile", action="store_true", help="py-spy the web workers under load")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_args(parser)
    args = parser.parse_args()
    common.django_setup()
    started = time.time()
    result = run(args)
    result["elapsed_s"] = round(time.time() - started, 1)
    common.save_json("ingest-last", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
