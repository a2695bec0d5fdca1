"""A small load generator for an exact number of orders (wrk runs for a time, not a count), and
the fallback for the ingest figures when wrk is not installed (`--duration`, `--empty`):
asyncio, raw HTTP/1.1 keep-alive connections to 127.0.0.1 only, run as its own process.

    python bench/loadgen.py --port P --store S --key K --count N [--concurrency 16] [--rate R]
        [--prefix TAG] [--seed 1] [--nskus 200]

Each order: a unique Idempotency-Key and customer email `<prefix>-<i>@example.com`, 1–3 distinct
lines from the seeded catalogue. `--rate` paces submissions (orders/s, 0 = as fast as the server
answers). Prints one JSON line: sent, accepted (202), errors, status counts, elapsed, p50/p95 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time

HOST = "127.0.0.1"


def card_number(i: int, rng: random.Random) -> str:
    """A Luhn-valid Visa number of its own per order (none of the gateway's test cards that
    decline), whose last four are `i` mod 10,000: the fraud check knows a card by brand and last
    four, so random numbers would share them by chance and trip the per-card velocity rule
    (6 in an hour) now and then, as one shopper's card would."""
    head = [4, 2, 4, 2] + [rng.randrange(10) for _ in range(7)]
    tail = [int(d) for d in f"{i % 10000:04d}"]
    for x in range(10):
        digits = head + [x] + tail
        total = 0
        for pos, d in enumerate(reversed(digits)):
            d = d * 2 if pos % 2 == 1 else d
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return "".join(map(str, digits))
    raise AssertionError("unreachable: one digit always completes the Luhn sum")


def body(prefix: str, i: int, rng: random.Random, nskus: int) -> bytes:
    lines = rng.sample(range(1, nskus + 1), rng.randint(1, 3))
    return json.dumps(
        {
            "customer": {"email": f"{prefix}-{i}@example.com", "name": "Bench Buyer"},
            "items": [{"sku": f"BENCH-{s:04d}", "quantity": rng.randint(1, 3)} for s in lines],
            "shipping_address": {
                "line1": "1 Main St",
                "city": "Berlin",
                "postal_code": "10115",
                "country": "DE",
            },
            "payment": {"card_number": card_number(i, rng), "exp_month": 12, "exp_year": 2030, "cvc": "123"},
            "currency": "EUR",
        },
        separators=(",", ":"),
    ).encode()


async def read_response(reader: asyncio.StreamReader) -> int:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split()[1])
    length, chunked = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readline()).strip() or b"0", 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def main_async(args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    issued = 0
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    errors = 0
    start = time.monotonic()
    interval = 1.0 / args.rate if args.rate else 0.0
    stop_at = start + args.duration if args.duration else None

    def next_index() -> int | None:
        nonlocal issued
        if (args.count and issued >= args.count) or (stop_at and time.monotonic() >= stop_at):
            return None
        issued += 1
        return issued - 1

    async def client() -> None:
        nonlocal errors
        reader = writer = None
        while True:
            i = next_index()
            if i is None:
                break
            if interval:
                due = start + i * interval
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            if args.empty:
                payload = b""
                head = (
                    f"GET /api/v1/store HTTP/1.1\r\nHost: {HOST}:{args.port}\r\nX-Store-ID: {args.store}\r\n"
                    f"Authorization: Bearer {args.key}\r\n\r\n"
                ).encode()
            else:
                payload = body(args.prefix, i, rng, args.nskus)
                head = (
                    f"POST /api/v1/orders HTTP/1.1\r\nHost: {HOST}:{args.port}\r\n"
                    f"X-Store-ID: {args.store}\r\n"
                    f"Authorization: Bearer {args.key}\r\nIdempotency-Key: {args.prefix}-{i}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
                ).encode()
            for _attempt in range(3):
                try:
                    if writer is None:
                        reader, writer = await asyncio.open_connection(HOST, args.port)
                    t0 = time.monotonic()
                    writer.write(head + payload)
                    await writer.drain()
                    status = await asyncio.wait_for(read_response(reader), 60)
                    latencies.append(time.monotonic() - t0)
                    statuses[status] = statuses.get(status, 0) + 1
                    break
                except (TimeoutError, OSError, ConnectionError, asyncio.IncompleteReadError):
                    errors += 1
                    if writer is not None:
                        writer.close()
                    reader = writer = None
                    await asyncio.sleep(0.1)  # the same key again: a replay at worst, never a twin
        if writer is not None:
            writer.close()

    await asyncio.gather(*(client() for _ in range(args.concurrency)))
    elapsed = time.monotonic() - start
    latencies.sort()

    def pct(p: float) -> float:
        return (
            round(1000 * latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))], 1)
            if latencies
            else 0
        )

    return {
        "sent": issued,
        "accepted": statuses.get(202, 0),
        "statuses": statuses,
        "socket_errors": errors,
        "elapsed_s": round(elapsed, 3),
        "rate": round(statuses.get(202, 0) / elapsed, 1) if elapsed else 0,
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
        "ok": statuses.get(200 if args.empty else 202, 0),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--count", type=int, default=0, help="stop after N requests (0: no limit)")
    parser.add_argument("--duration", type=float, default=0.0, help="stop after S seconds (0: no limit)")
    parser.add_argument("--empty", action="store_true", help="GET /api/v1/store instead of orders")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--prefix", default="lg")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--nskus", type=int, default=200)
    args = parser.parse_args()
    if not args.count and not args.duration:
        parser.error("give --count or --duration")
    print(json.dumps(asyncio.run(main_async(args))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
