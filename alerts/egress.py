"""Where outgoing webhooks may go, and the one way they are sent there.

A store chooses the URL, so every send is a request we make on a stranger's behalf from inside
our network. The rules, in one place:

* The host is resolved (`socket.getaddrinfo`) and EVERY address it gives must be global: no
  loopback, private, link-local, CGNAT (100.64/10), multicast, reserved, unspecified or site-local
  address, nor one of those wrapped in IPv6 (IPv4-mapped, IPv4-compatible, 6to4, NAT64) — a name
  with one public and one private address is refused, since either could be dialled.
* The connection goes to the address that was checked: no second lookup that a short-TTL DNS
  answer could turn inward (DNS rebinding). The Host header, TLS SNI and the certificate check
  still name the host.
* At most `MAX_RESPONSE_BYTES` are taken from the receiver, within one overall deadline that
  covers connect, TLS, sending and reading: a receiver that trickles or floods cannot hold a
  worker longer than the store's timeout.
* What comes back to the store is a generic text (`Reply.error`), never the receiver's body nor
  an exception's text, which may name hosts and ports inside.

The local-development switch (`WEBHOOKS_ALLOW_HTTP_LOCALHOST`) allows loopback only — 127.0.0.0/8,
::1, a name that resolves only to those — and only then plain http://.

Built on the standard library's `http.client` rather than `requests`: the deadline has to bind
every socket read, headers included, which a per-read timeout does not do.
"""

from __future__ import annotations

import functools
import http.client
import io
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi

MAX_RESPONSE_BYTES = 64 * 1024  # status line, headers and body, as read off the socket
CONNECT_TIMEOUT_CAP = 3.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))

# The texts a store may read about a send (nothing of the receiver's reply, nothing of ours).
ADDRESS_NOT_ALLOWED = "address not allowed"
HTTPS_REQUIRED = "https required"
UNRESOLVABLE = "could not resolve host"
REFUSED = "connection refused"
CONNECT_FAILED = "connection failed"
TIMED_OUT = "timed out"
TLS_CERTIFICATE = "TLS certificate not valid for host"
TLS_FAILED = "TLS handshake failed"
INVALID_RESPONSE = "invalid response"
TOO_LARGE = "response too large"


class Unresolvable(Exception):
    """The name has no address (now): DNS may come round, so a send retries."""


class ResponseTooLarge(Exception):
    pass


# ---------------------------------------------------------------------------------- policy


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 translation form carries, which is where it really leads."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in _NAT64) or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_global(ip: IPAddress) -> bool:
    """`ip.is_global` plus what it lets through on some Python versions (multicast, site-local,
    the IPv6 forms of private IPv4 addresses)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return is_global(embedded)
        if ip.is_site_local:
            return False
    elif ip in _CGNAT:
        return False
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def is_loopback(ip: IPAddress) -> bool:
    """127.0.0.0/8, ::1 and ::ffff:127.x (the same socket on a dual stack) — not 6to4/NAT64
    forms of 127.x, which lead to a relay, not to this machine."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def address_allowed(ip: IPAddress, *, allow_loopback: bool) -> bool:
    return is_global(ip) or (allow_loopback and is_loopback(ip))


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address of `host` (an IP literal gives itself), in the resolver's order, once each."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise Unresolvable(host) from exc
    found: list[IPAddress] = []
    for family, *_rest, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and len(sockaddr) >= 4 and sockaddr[3]:
            ip = ipaddress.ip_address(f"{ip}%{sockaddr[3]}")  # a scope id: link-local, refused
        if ip not in found:
            found.append(ip)
    if not found:
        raise Unresolvable(host)
    return found


@dataclass(frozen=True)
class Target:
    tls: bool
    host: str
    port: int
    path: str


def parse(url: str) -> Target:
    """The parts of an http(s) URL we send to; ValueError for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("not an http(s) URL")
    tls = parts.scheme == "https"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(tls=tls, host=parts.hostname, port=parts.port or (443 if tls else 80), path=path)


def refusal(target: Target, addresses: list[IPAddress], *, allow_loopback: bool) -> str | None:
    """Why these addresses may not be sent to (a generic text), or None. One rule for the check
    when an endpoint is saved and the check before every send."""
    if not all(address_allowed(ip, allow_loopback=allow_loopback) for ip in addresses):
        return ADDRESS_NOT_ALLOWED
    if not target.tls and not (allow_loopback and all(is_loopback(ip) for ip in addresses)):
        return HTTPS_REQUIRED
    return None


# ------------------------------------------------------------------------------- transport


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Certificates checked against the host name, with the CA bundle `requests` uses."""
    return ssl.create_default_context(cafile=certifi.where())


class _DeadlineReader(io.RawIOBase):
    """The socket as the response parser reads it: each read gets only the time left before the
    deadline, and no more than `limit` + 1 bytes are ever taken in all."""

    def __init__(self, raw: io.RawIOBase, sock: socket.socket, *, deadline: float, limit: int):
        self.raw, self.sock, self.deadline, self.limit, self.taken = raw, sock, deadline, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self.sock.settimeout(_time_left(self.deadline))
        with memoryview(buffer) as view:
            n = self.raw.readinto(view[: self.limit + 1 - self.taken])
        self.taken += n or 0
        if self.taken > self.limit:
            raise ResponseTooLarge
        return n

    def close(self) -> None:
        if not self.closed:
            self.raw.close()
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    def __init__(self, sock, *, deadline: float, limit: int, **kwargs):
        super().__init__(sock, **kwargs)
        # Keep the socket file the parser opened (it holds the socket open after the connection
        # lets go of it, as http.client does for "Connection: close"), read through our limits.
        raw = self.fp.detach()
        self.fp = io.BufferedReader(_DeadlineReader(raw, sock, deadline=deadline, limit=limit))


class PinnedConnection(http.client.HTTPConnection):
    """HTTP(S) to `host` that dials `ip` — the address that was checked — while the Host header,
    TLS SNI and the certificate's host name check all name `host`."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ip: IPAddress,
        tls_context: ssl.SSLContext | None,
        connect_timeout: float,
        deadline: float,
    ):
        super().__init__(host, port, timeout=connect_timeout)
        self.ip, self.tls_context, self.deadline = ip, tls_context, deadline
        if tls_context is not None:
            self.default_port = 443  # so Host carries no ":443"
        self.response_class = functools.partial(
            _DeadlineResponse, deadline=deadline, limit=MAX_RESPONSE_BYTES
        )

    def connect(self) -> None:
        sock = socket.create_connection((str(self.ip), self.port), timeout=self.timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls_context is not None:
                # One deadline for the whole handshake (ssl keeps it across its reads).
                sock.settimeout(_time_left(self.deadline))
                sock = self.tls_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def _time_left(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    return remaining


@dataclass(frozen=True)
class Reply:
    """What a send came to: the receiver's status (if one was read) and a generic error text
    ("" when the exchange completed). `retryable` says whether sending again may help."""

    status: int | None
    error: str = ""
    retryable: bool = True


def post(url: str, *, body: bytes, headers: dict[str, str], timeout: float, allow_loopback: bool) -> Reply:
    """POST `body` to `url` under the rules above, all within `timeout` seconds (DNS aside: the
    resolver bounds its own wait). A refused address is never dialled."""
    deadline = time.monotonic() + timeout
    try:
        target = parse(url)
    except ValueError:
        return Reply(None, ADDRESS_NOT_ALLOWED, retryable=False)
    try:
        addresses = resolve(target.host, target.port)
    except Unresolvable:
        return Reply(None, UNRESOLVABLE)
    refused = refusal(target, addresses, allow_loopback=allow_loopback)
    if refused:
        return Reply(None, refused, retryable=False)

    context = _tls_context() if target.tls else None
    conn: PinnedConnection | None = None
    failure = CONNECT_FAILED
    try:
        for ip in addresses:  # every one of them was checked above
            candidate = PinnedConnection(
                target.host, target.port, ip=ip, tls_context=context, deadline=deadline,
                connect_timeout=min(CONNECT_TIMEOUT_CAP, _time_left(deadline)),
            )  # fmt: skip
            try:
                candidate.connect()
            except ssl.SSLError:
                raise
            except ConnectionRefusedError:
                failure = REFUSED
                continue
            except TimeoutError:
                failure = TIMED_OUT
                continue
            except OSError:
                continue
            conn = candidate
            break
        if conn is None:
            return Reply(None, failure)
        return _exchange(conn, target, body=body, headers=headers)
    except ssl.SSLCertVerificationError:
        return Reply(None, TLS_CERTIFICATE)
    except ssl.SSLError:
        return Reply(None, TLS_FAILED)
    except TimeoutError:
        return Reply(None, TIMED_OUT)
    except OSError:
        return Reply(None, CONNECT_FAILED)
    finally:
        if conn is not None:
            conn.close()


def _exchange(conn: PinnedConnection, target: Target, *, body: bytes, headers: dict[str, str]) -> Reply:
    """Send, read the status, take what is left of the reply (within the byte limit) and drop it."""
    status: int | None = None
    try:
        conn.sock.settimeout(_time_left(conn.deadline))
        conn.request("POST", target.path, body=body, headers={**headers, "Connection": "close"})
        # Closing the response is what lets go of the socket (http.client hands it over).
        with conn.getresponse() as response:
            status = response.status
            while response.read1(16 * 1024):
                pass
    except ResponseTooLarge:
        return Reply(status, TOO_LARGE, retryable=False)
    except TimeoutError:
        return Reply(status, TIMED_OUT)
    except http.client.HTTPException:
        return Reply(status, INVALID_RESPONSE)
    except ConnectionRefusedError:
        return Reply(status, REFUSED)
    except OSError:
        return Reply(status, CONNECT_FAILED)
    return Reply(status)
