"""N websocket clients of the live dashboard in one asyncio process (its own process, loopback).

    python bench/ws_clients.py --port P --store S --session SID --clients 200 --out FILE

Each client opens `/ws/dashboard/?store=S` with the operator's session cookie and records, for
every `{"type": "event"}` message, the event id and (receipt time − event.created_at). It writes
"READY" on stdout once every client got its hello; on SIGTERM/SIGINT (or a line on stdin) the
clients keep reading until no message arrived for QUIET seconds (pushes still in flight are late,
not missed), then it writes FILE: {"clients", "connected", "events": {client: [ids]}, "latencies": [s]}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from datetime import datetime

import websockets

HOST = "127.0.0.1"
QUIET = 3.0  # seconds without any message, after the stop request, before a client closes
last_rx = [0.0]  # the last receipt by any client (monotonic)


async def client(
    i: int, args, stop: asyncio.Event, ready: set[int], seen: dict[int, list[int]], lat: list[float]
):
    url = f"ws://{HOST}:{args.port}/ws/dashboard/?store={args.store}"
    headers = {"Cookie": f"sessionid={args.session}"}
    for attempt in range(5):
        try:
            async with websockets.connect(
                url, additional_headers=headers, origin=f"http://{HOST}:{args.port}", max_queue=None,
                open_timeout=30, ping_interval=None,
            ) as ws:  # fmt: skip
                ids = seen.setdefault(i, [])
                while True:
                    try:
                        raw = await asyncio.wait_for(ws.recv(), 0.5)
                    except TimeoutError:
                        # told to stop: drain what is still in flight, until QUIET s of silence
                        if stop.is_set() and time.monotonic() - last_rx[0] > QUIET:
                            break
                        continue
                    last_rx[0] = time.monotonic()
                    now = time.time()
                    msg = json.loads(raw)
                    kind = msg.get("type")
                    if kind == "hello":
                        ready.add(i)
                    elif kind == "event":
                        ev = msg["event"]
                        ids.append(ev["id"])
                        lat.append(now - datetime.fromisoformat(ev["created_at"]).timestamp())
                return
        except (OSError, websockets.exceptions.WebSocketException) as exc:
            if attempt == 4:
                print(f"client {i} failed: {exc}", file=sys.stderr, flush=True)
                return
            await asyncio.sleep(0.5 + attempt)


async def main_async(args) -> dict:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_reader(sys.stdin, stop.set)
    ready: set[int] = set()
    seen: dict[int, list[int]] = {}
    lat: list[float] = []
    tasks = []
    for i in range(args.clients):
        tasks.append(asyncio.create_task(client(i, args, stop, ready, seen, lat)))
        if i % 20 == 19:
            await asyncio.sleep(0.05)  # do not stampede the handshake
    deadline = time.monotonic() + 60
    while len(ready) < args.clients and time.monotonic() < deadline and not stop.is_set():
        await asyncio.sleep(0.1)
    print(f"READY {len(ready)}", flush=True)
    await stop.wait()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"clients": args.clients, "connected": len(ready), "events": seen, "latencies": lat}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--session", required=True)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    with open(args.out, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
