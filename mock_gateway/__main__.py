"""Command line entry point: ``python -m mock_gateway [--host H] [--port P] [--seed N]``.

Environment: ``MOCK_GATEWAY_PORT`` (default port when ``--port`` is not given) and
``MOCK_GATEWAY_SLOW_MS`` (how long the slow test card takes, default 2000).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from types import FrameType

from mock_gateway.bank import Bank
from mock_gateway.server import make_server

DEFAULT_PORT = 8001
DEFAULT_SLOW_MS = 2000


def _env_int(parser: argparse.ArgumentParser, name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        parser.error(f"{name} must be an integer, got {raw!r}")
    if value < 0:
        parser.error(f"{name} must not be negative, got {value}")
    return value


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, int]:
    parser = argparse.ArgumentParser(prog="python -m mock_gateway", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"port to listen on (default $MOCK_GATEWAY_PORT or {DEFAULT_PORT}; 0 picks a free one)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for the failure_rate RNG")
    args = parser.parse_args(argv)
    if args.port is None:
        args.port = _env_int(parser, "MOCK_GATEWAY_PORT", DEFAULT_PORT)
    slow_ms = _env_int(parser, "MOCK_GATEWAY_SLOW_MS", DEFAULT_SLOW_MS)
    return args, slow_ms


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """Route SIGTERM and SIGINT to the same clean exit path."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args, slow_ms = parse_args(argv)
    bank = Bank(seed=args.seed, slow_ms=slow_ms)
    try:
        server = make_server(args.host, args.port, bank)
    except OSError as exc:
        print(f"mock gateway: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    # Installed explicitly for SIGINT too: a process started in the background inherits
    # SIGINT as ignored, and Ctrl-C / `kill -INT` must still stop it.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)
    host, port = server.server_address[:2]
    print(f"mock gateway listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    print("mock gateway stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
