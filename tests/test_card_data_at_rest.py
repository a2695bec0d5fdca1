"""The card-data dump test (issue #14, "no card data at rest").

Orders go through the HTTP API — first requests, a replay, a key reused with another body (422),
a stock conflict (409), validation errors, the legacy form, a declined card — and through the fraud
check and the charge against the real mock gateway, in-process. Then every row of every table of
the test database and every key of the test Redis database is dumped, and neither the full number
nor the CVC may be found in it in any form we could reverse: as typed, as the SHA-256, SHA-1 or
MD5 of the number, as the old fingerprint (a plain SHA-256 of the body), inside anything base64- or
hex-encoded, or the CVC next to its name. The log lines and the answers are held to the same rule,
and the vault entries must be Fernet-encrypted JSON without a CVC.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import random
import re

import pytest
import redis
from cryptography.fernet import Fernet
from django.conf import settings
from django.db import connection

from orders.models import Order
from payments import breaker
from payments import services as payment_services
from payments.models import Payment
from tests.factories import make_product, order_body
from tests.orders.helpers import place

pytestmark = pytest.mark.django_db

DECLINED = "4000000000000002"  # the mock gateway's generic decline


def _luhn_complete(partial: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    return partial + str((10 - total % 10) % 10)


def _card(rng: random.Random, prefix: str, length: int) -> str:
    middle = "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    return _luhn_complete(prefix + middle)


def _cvc(rng: random.Random, digits: int = 3) -> str:
    return "".join(rng.choice("123456789") for _ in range(digits))


@pytest.fixture
def gw(gateway, settings):
    settings.GATEWAY_URL = gateway.url
    breaker.reset()
    yield gateway
    breaker.reset()


def _dump_database() -> dict[str, bytes]:
    """Every row of every table of the test database, as bytes per table."""
    dump: dict[str, bytes] = {}
    with connection.cursor() as cur:
        cur.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        )
        tables = [row[0] for row in cur.fetchall()]
        for table in tables:
            cur.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            parts = []
            for row in cur.fetchall():
                for value in row:
                    if isinstance(value, memoryview | bytes | bytearray):
                        parts.append(bytes(value))
                    elif isinstance(value, dict | list):
                        parts.append(json.dumps(value, default=str).encode())
                    else:
                        parts.append(str(value).encode())
            dump[table] = b"\x00".join(parts)
    assert {"orders_order", "orders_idempotencyrecord", "core_event", "payments_payment"} <= set(dump)
    return dump


def _dump_redis() -> dict[bytes, bytes]:
    """Every key of the test Redis database with its value, whatever its type."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    dump: dict[bytes, bytes] = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            value = client.get(key) or b""
        elif kind == "hash":
            value = b"\x00".join(k + b"=" + v for k, v in client.hgetall(key).items())
        elif kind == "list":
            value = b"\x00".join(client.lrange(key, 0, -1))
        elif kind == "set":
            value = b"\x00".join(client.smembers(key))
        elif kind == "zset":
            value = b"\x00".join(
                m + b"=" + str(s).encode() for m, s in client.zrange(key, 0, -1, withscores=True)
            )
        elif kind == "stream":
            value = repr(client.xrange(key)).encode()
        else:
            value = b""
        dump[key] = value
    return dump


_B64_TOKEN = re.compile(rb"[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX_TOKEN = re.compile(rb"[0-9a-fA-F]{24,}")


def _decodings(blob: bytes) -> list[bytes]:
    """The blob, and whatever its base64- and hex-looking tokens decode to."""
    out = [blob]
    for token in _B64_TOKEN.findall(blob):
        stripped = token.rstrip(b"=")
        for start in range(4):  # the token may start mid-group
            piece = stripped[start:]
            piece = piece[: len(piece) - len(piece) % 4] if len(piece) % 4 == 1 else piece
            padded = piece + b"=" * (-len(piece) % 4)
            for decode in (base64.b64decode, base64.urlsafe_b64decode):
                try:
                    out.append(decode(padded))
                except (binascii.Error, ValueError):
                    pass
    for token in _HEX_TOKEN.findall(blob):
        for start in (0, 1):
            piece = token[start:]
            try:
                out.append(binascii.unhexlify(piece[: len(piece) // 2 * 2]))
            except binascii.Error:
                pass
    return out


class Secrets:
    """The card data sent, and every reversible form of it that must not be found."""

    def __init__(self):
        self.numbers: set[str] = set()
        self.cvcs: set[str] = set()
        self.body_hashes: set[str] = set()

    def sent(self, body: dict) -> dict:
        payment = body.get("payment") or {}
        if payment.get("card_number"):
            self.numbers.add(re.sub(r"\D", "", str(payment["card_number"])))
        if payment.get("cvc"):
            self.cvcs.add(str(payment["cvc"]))
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        self.body_hashes.add(hashlib.sha256(canonical.encode()).hexdigest())
        return body

    def plain_needles(self) -> list[bytes]:
        needles = []
        for number in self.numbers:
            raw = number.encode()
            needles += [raw, b" ".join(raw[i : i + 4] for i in range(0, len(raw), 4))]
            needles += [getattr(hashlib, h)(raw).hexdigest().encode() for h in ("sha256", "sha1", "md5")]
            needles += [base64.b64encode(raw).rstrip(b"="), base64.urlsafe_b64encode(raw).rstrip(b"=")]
        needles += [h.encode() for h in self.body_hashes]
        return needles

    def found_in(self, blob: bytes) -> list[str]:
        hits = []
        lowered = blob.lower()
        for needle in self.plain_needles():
            if needle.lower() in lowered:
                hits.append(needle.decode())
        for decoded in _decodings(blob):
            for number in self.numbers:
                if number.encode() in decoded:
                    hits.append(f"{number} (encoded)")
            for cvc in self.cvcs:
                if re.search(rb"(?i)cvc\W{0,12}" + cvc.encode() + rb"(?!\d)", decoded):
                    hits.append(f"cvc {cvc}")
        return hits


def _charge_everything(store) -> None:
    """What the workers would do after each order.created: the fraud check, then the charge."""
    for order in Order.all_stores.filter(store=store):
        payment_services.screen_order(store=store, order_id=order.pk)
    for payment in Payment.all_stores.filter(store=store):
        for _ in range(10):
            if payment_services.attempt_charge(store=store, payment_id=payment.pk).kind == "done":
                break


def test_no_card_number_or_cvc_is_kept_anywhere_in_any_reversible_form(api, store, gw, settings, caplog):
    caplog.set_level(logging.DEBUG)
    settings.CARD_VAULT_KEY = Fernet.generate_key().decode()
    rng = random.Random()
    secrets = Secrets()
    make_product(store, "TEE", price="20.00", stock=20)
    make_product(store, "RARE", price="99.00", stock=1)
    answers = []

    def post(body, key):
        r = place(api, secrets.sent(body), key=key)
        answers.append(r.content)
        return r

    # several first requests, distinct full numbers and CVCs (visa, mastercard, amex typed with spaces)
    visa = order_body(("TEE", 1), card=_card(rng, "4", 16))
    visa["payment"]["cvc"] = _cvc(rng)
    assert post(visa, "k-visa").status_code == 202
    master = order_body(("TEE", 2), card=_card(rng, "51", 16))
    master["payment"]["cvc"] = _cvc(rng)
    assert post(master, "k-master").status_code == 202
    amex_number = _card(rng, "37", 15)
    amex = order_body(("TEE", 1), card=f"{amex_number[:4]} {amex_number[4:10]} {amex_number[10:]}")
    amex["payment"]["cvc"] = _cvc(rng, 4)
    assert post(amex, "k-amex").status_code == 202
    declined = order_body(("TEE", 1), card=DECLINED)
    declined["payment"]["cvc"] = _cvc(rng)
    assert post(declined, "k-declined").status_code == 202

    # a replay, and the same key with another body
    replay = post(visa, "k-visa")
    assert replay.status_code == 202 and replay["Idempotent-Replayed"] == "true"
    other = order_body(("TEE", 3), card=_card(rng, "4", 16))
    other["payment"]["cvc"] = _cvc(rng)
    assert post(other, "k-visa").status_code == 422

    # a stock conflict (409): the order and its vault entry are rolled back
    conflict = order_body(("RARE", 2), card=_card(rng, "4", 16))
    conflict["payment"]["cvc"] = _cvc(rng)
    assert post(conflict, "k-conflict").status_code == 409

    # validation errors: a number that fails Luhn, a bad CVC, a valid card with a bad country
    valid = _card(rng, "4", 16)
    bad_luhn = order_body(("TEE", 1), card=valid[:-1] + str((int(valid[-1]) + 1) % 10))
    bad_luhn["payment"]["cvc"] = _cvc(rng)
    bad_cvc = order_body(("TEE", 1), card=_card(rng, "4", 16))
    bad_cvc["payment"]["cvc"] = _cvc(rng) + "x"
    bad_country = order_body(("TEE", 1), card=_card(rng, "4", 16))
    bad_country["payment"]["cvc"] = _cvc(rng)
    bad_country["shipping_address"]["country"] = "ZZ"
    for n, body in enumerate((bad_luhn, bad_cvc, bad_country)):
        r = post(body, f"k-invalid-{n}")
        assert r.status_code == 400 and r.json()["error"]["code"] == "validation_error", r.content

    # the legacy form
    legacy_number, legacy_cvc = _card(rng, "4", 16), _cvc(rng)
    legacy = {
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "sku": ["TEE"],
        "qty": ["1"],
        "card": legacy_number,
        "exp": "12/31",
        "cvc": legacy_cvc,
        "address": "1 Test Street",
        "city": "Berlin",
        "zip": "10115",
        "country": "DE",
        "order_ref": "LEG-1",
    }
    secrets.numbers.add(legacy_number)
    secrets.cvcs.add(legacy_cvc)
    for _ in range(2):  # the first and its replay
        r = api.post("/api/v1/legacy/orders", legacy)
        assert r.status_code == 202, r.content
        answers.append(r.content)

    _charge_everything(store)

    # nothing at rest: the database, the Redis database; nor in the answers or the log lines
    hits = {}
    for table, blob in _dump_database().items():
        if found := secrets.found_in(blob):
            hits[f"table {table}"] = found
    redis_dump = _dump_redis()
    for key, blob in redis_dump.items():
        if found := secrets.found_in(key + b"\x00" + blob):
            hits[f"redis {key!r}"] = found
    for n, content in enumerate(answers):
        if found := secrets.found_in(content):
            hits[f"answer {n}"] = found
    for record in caplog.records:
        line = (record.getMessage() + " " + repr(record.__dict__)).encode()
        if found := secrets.found_in(line):
            hits[f"log {record.name}"] = found
    assert not hits, hits

    # the flow ran as a store's would: the charges went through, the decline failed its order
    statuses = dict(Order.all_stores.filter(store=store).values_list("card_last4", "status"))
    assert statuses[DECLINED[-4:]] == "payment_failed"
    assert statuses[visa["payment"]["card_number"][-4:]] in {"paid", "fulfilling"}
    assert Order.all_stores.filter(store=store).count() == 5

    # the vault: one entry per order taken, Fernet-encrypted JSON, never a pickle, never a CVC
    vault_keys = [k for k in redis_dump if b":vault:" in k]
    assert len(vault_keys) == 5
    fernet = Fernet(settings.CARD_VAULT_KEY)
    for key in vault_keys:
        raw = redis_dump[key]
        assert not raw.startswith(b"\x80")
        card = json.loads(fernet.decrypt(raw))
        assert set(card) <= {"card_number", "exp_month", "exp_year"} and "cvc" not in card
        assert card["card_number"] in secrets.numbers
