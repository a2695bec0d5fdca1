"""A fast path for the body of `POST /api/v1/orders` that is valid as sent (nearly all of them).

DRF's nested `OrderCreateSerializer` builds and deep-copies some forty field objects per request
— about a millisecond, the largest single cost of intake after the database. `accept()` checks
the same rules by hand and returns exactly the serializer's `validated_data`; the moment anything
is unusual — a wrong type, a value DRF would trim, lower-case or coerce, any rule broken — it
returns None and the serializer decides and words every error. So the fast path can only ever
accept what the serializer accepts, with the same result (tests/orders/test_validation.py holds
the two equal on valid bodies and on fuzzed ones), and every error still comes from one place.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone

from .cards import digits_only, luhn_valid
from .countries import ISO_3166_ALPHA2
from .services import MAX_LINES, MAX_QUANTITY

# The serializer's rules (orders/api.py imports them from here, so the two never drift apart).
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
CVC_RE = re.compile(r"^\d{3,4}$")
METADATA_MAX_KEYS = 50
METADATA_MAX_BYTES = 4096


def _text(value: Any, max_length: int, *, blank: bool = False) -> bool:
    """A string DRF's CharField keeps as it is: not trimmed, not blank (unless allowed), within
    max_length, no NUL and no surrogate."""
    if type(value) is not str or len(value) > max_length or value != value.strip():
        return False
    if not value and not blank:
        return False
    if "\x00" in value:
        return False
    return value.isascii() or not any(0xD800 <= ord(ch) <= 0xDFFF for ch in value)


def _int(value: Any, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def accept(data: Any, store_currency: str) -> dict[str, Any] | None:
    """The validated body, or None to let the serializer decide."""
    if type(data) is not dict:
        return None
    customer, items = data.get("customer"), data.get("items")
    address, payment = data.get("shipping_address"), data.get("payment")
    if not (type(customer) is dict and type(address) is dict and type(payment) is dict):
        return None
    if type(items) is not list or not 1 <= len(items) <= MAX_LINES:
        return None

    email, name = customer.get("email"), customer.get("name")
    if not (_text(email, 254) and _text(name, 200)):
        return None
    try:
        validate_email(email)
    except ValidationError:
        return None

    lines = []
    seen: set[str] = set()
    for item in items:
        if type(item) is not dict:
            return None
        sku, quantity = item.get("sku"), item.get("quantity")
        if not (_text(sku, 64) and _int(quantity, 1, MAX_QUANTITY)) or sku in seen:
            return None
        seen.add(sku)
        lines.append({"sku": sku, "quantity": quantity})

    line1, line2 = address.get("line1"), address.get("line2", "")
    city, postal_code, country = address.get("city"), address.get("postal_code"), address.get("country")
    if not (_text(line1, 200) and _text(line2, 200, blank=True) and _text(city, 100)):
        return None
    if not (_text(postal_code, 20) and _text(country, 2) and country.upper() in ISO_3166_ALPHA2):
        return None

    card, month, year, cvc = (payment.get(k) for k in ("card_number", "exp_month", "exp_year", "cvc"))
    if not (_text(card, 40) and _int(month, 1, 12) and _int(year, 2000, 2100) and _text(cvc, 4)):
        return None
    number = digits_only(card)
    if not (number.isascii() and number.isdigit() and 12 <= len(number) <= 19 and luhn_valid(number)):
        return None
    if not (cvc.isascii() and cvc.isdigit() and len(cvc) >= 3):
        return None
    now = timezone.now()
    if year < now.year or (year == now.year and month < now.month):
        return None

    out: dict[str, Any] = {
        "customer": {"email": email.lower(), "name": name},
        "items": lines,
        "shipping_address": {
            "line1": line1,
            "line2": line2,
            "city": city,
            "postal_code": postal_code,
            "country": country.upper(),
        },
        "payment": {"card_number": number, "exp_month": month, "exp_year": year, "cvc": cvc},
    }
    if "currency" in data:
        currency = data["currency"]
        if not (_text(currency, 3) and currency == store_currency and CURRENCY_RE.match(currency)):
            return None
        out["currency"] = currency
    metadata = data.get("metadata", {})
    if type(metadata) is not dict or len(metadata) > METADATA_MAX_KEYS:
        return None
    if metadata and len(json.dumps(metadata, default=str).encode()) > METADATA_MAX_BYTES:
        return None
    out["metadata"] = metadata
    return out
