"""The older flat submission format, translated into the body `POST /api/v1/orders` takes, and its
errors translated back, so old checkouts go through the very same validation and `place_order`.

Legacy fields: `email`, `name`, `sku` (repeatable) with `qty` (repeatable, paired by position) or
`items="SKU:QTY,SKU:QTY"`, `card`, `address`, `city`, `zip`, `country`, optional `order_ref`;
also accepted: `address2`, `currency`, `exp` ("MM/YY"), `exp_month`, `exp_year`, `cvc`.
"""

from __future__ import annotations

import re
from typing import Any

from django.http import QueryDict

_INT_RE = re.compile(r"^\s*\d{1,9}\s*$")
_EXP_RE = re.compile(r"^\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*$")

# Paths of the main body → legacy names. Item paths are handled in `legacy_path`.
FIELD_NAMES: dict[str, str] = {
    "customer": "email",
    "customer.email": "email",
    "customer.name": "name",
    "shipping_address": "address",
    "shipping_address.line1": "address",
    "shipping_address.line2": "address2",
    "shipping_address.city": "city",
    "shipping_address.postal_code": "zip",
    "shipping_address.country": "country",
    "payment": "card",
    "payment.card_number": "card",
    "payment.exp_month": "exp_month",
    "payment.exp_year": "exp_year",
    "payment.cvc": "cvc",
    "currency": "currency",
    "metadata": "order_ref",
}

_ITEM_PATH = re.compile(r"^items\[(\d+)\]\.?(.*)$")


class LegacyBody:
    """Uniform access to a form (QueryDict, repeatable keys) or a JSON object."""

    def __init__(self, data: Any):
        self.data = data if isinstance(data, (dict, QueryDict)) else {}

    def many(self, name: str) -> list[Any]:
        if isinstance(self.data, QueryDict):
            return self.data.getlist(name)
        value = self.data.get(name)
        if value is None:
            return []
        return list(value) if isinstance(value, list) else [value]

    def one(self, name: str) -> Any:
        values = self.many(name)
        return values[-1] if values else None

    def has(self, name: str) -> bool:
        return name in self.data


def _int_or_raw(value: Any) -> Any:
    """Form fields are strings: "2" means 2; anything else is left for validation to refuse."""
    if isinstance(value, str) and _INT_RE.match(value):
        return int(value)
    return value


def _text(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def translate(data: Any) -> tuple[dict[str, Any], dict[str, list[str]], str]:
    """(main-API body, errors found while translating, how lines were given: "sku" or "items")."""
    body = LegacyBody(data)
    errors: dict[str, list[str]] = {}
    items: list[dict[str, Any]] = []
    style = "sku"
    if body.has("items"):
        style = "items"
        raw = body.one("items")
        if isinstance(raw, str):
            for n, part in enumerate(p for p in raw.split(",") if p.strip()):
                sku, sep, qty = part.strip().rpartition(":")
                if not sep or not sku.strip():
                    errors.setdefault("items", []).append(f"Line {n + 1}: use SKU:QTY.")
                    continue
                items.append({"sku": sku.strip(), "quantity": _int_or_raw(qty.strip())})
        elif isinstance(raw, list):  # JSON: [{"sku": ..., "qty": ...}]
            for n, entry in enumerate(raw):
                if not isinstance(entry, dict):
                    errors.setdefault("items", []).append(f"Line {n + 1}: use {{'sku', 'qty'}}.")
                    continue
                qty = entry.get("qty", entry.get("quantity", 1))
                items.append({"sku": _text(entry.get("sku")), "quantity": _int_or_raw(qty)})
        else:
            errors.setdefault("items", []).append('Use items="SKU:QTY,SKU:QTY".')
    else:
        skus = body.many("sku")
        qtys = body.many("qty")
        if qtys and len(qtys) != len(skus):
            errors["qty"] = [f"Give one qty per sku ({len(skus)} sku, {len(qtys)} qty)."]
        for n, sku in enumerate(skus):
            qty = qtys[n] if n < len(qtys) else 1
            items.append({"sku": _text(sku), "quantity": _int_or_raw(qty)})

    payment: dict[str, Any] = {}
    if body.one("card") is not None:
        payment["card_number"] = _text(body.one("card"))
    exp = body.one("exp")
    if isinstance(exp, str) and exp.strip():
        match = _EXP_RE.match(exp)
        if not match:
            errors["exp"] = ["Use MM/YY."]
        else:
            year = int(match.group(2))
            payment["exp_month"] = int(match.group(1))
            payment["exp_year"] = year + 2000 if year < 100 else year
    for name in ("exp_month", "exp_year"):
        if body.one(name) is not None:
            payment[name] = _int_or_raw(body.one(name))
    if body.one("cvc") is not None:
        cvc = body.one("cvc")
        payment["cvc"] = str(cvc) if isinstance(cvc, int) and not isinstance(cvc, bool) else cvc

    customer = {k: _text(body.one(src)) for k, src in (("email", "email"), ("name", "name"))}
    address = {
        k: _text(body.one(src))
        for k, src in (
            ("line1", "address"),
            ("line2", "address2"),
            ("city", "city"),
            ("postal_code", "zip"),
            ("country", "country"),
        )
    }
    out: dict[str, Any] = {
        "customer": {k: v for k, v in customer.items() if v is not None},
        "items": items,
        "shipping_address": {k: v for k, v in address.items() if v is not None},
        "payment": payment,
        "metadata": {},
    }
    if body.one("currency") is not None:
        out["currency"] = _text(body.one("currency"))
    order_ref = body.one("order_ref")
    if order_ref not in (None, ""):
        out["metadata"]["order_ref"] = str(order_ref)[:255]
    return out, errors, style


def legacy_path(path: str, style: str) -> str:
    """A main-API error path in legacy terms: `items[0].quantity` → `qty`, `customer.email` →
    `email`, `shipping_address.postal_code` → `zip`, ..."""
    match = _ITEM_PATH.match(path)
    if match:
        if style == "items":
            return "items"
        return "qty" if match.group(2) == "quantity" else "sku"
    if path == "items":
        return "items" if style == "items" else "sku"
    return FIELD_NAMES.get(path, path)


def legacy_fields(fields: dict[str, list[str]], style: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for path, messages in fields.items():
        name = legacy_path(path, style)
        match = _ITEM_PATH.match(path)
        prefix = f"line {int(match.group(1)) + 1}: " if match else ""
        for message in messages:
            text = prefix + message
            if text not in out.setdefault(name, []):
                out[name].append(text)
    return out
