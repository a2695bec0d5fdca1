"""Forms of the dashboard pages: they only parse; the services validate and decide."""

from __future__ import annotations

from typing import Any

from django import forms
from rest_framework import serializers

from orderflow.core.store_settings import SETTING_NAMES, StoreSettingsSerializer
from orderflow.core.tenancy import Store

TEST_CARDS = [
    ("4242424242424242", "4242 4242 4242 4242 — succeeds"),
    ("4000000000000002", "4000 0000 0000 0002 — declined (generic)"),
    ("4000000000009995", "4000 0000 0000 9995 — declined (insufficient funds)"),
    ("4000000000000119", "4000 0000 0000 0119 — processing error, retried"),
    ("4000000000000259", "4000 0000 0000 0259 — succeeds slowly"),
]


class TestOrderForm(forms.Form):
    sku = forms.ChoiceField(choices=())
    quantity = forms.IntegerField(min_value=1, max_value=1000, initial=1)
    card = forms.ChoiceField(choices=TEST_CARDS, initial=TEST_CARDS[0][0])
    email = forms.EmailField(required=False)

    def __init__(self, *args, products=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sku"].choices = [
            (p.sku, f"{p.sku} — {p.name} ({p.price} {p.currency}, {p.stock.available} left)")
            for p in products
        ]


class RestockForm(forms.Form):
    sku = forms.CharField(max_length=64)
    quantity = forms.IntegerField(min_value=1, max_value=1_000_000)
    note = forms.CharField(max_length=500, required=False)


class PackForm(forms.Form):
    packages = forms.IntegerField(min_value=1, max_value=1000, initial=1)
    weight_grams = forms.IntegerField(min_value=1, max_value=10**7, initial=500)


class RefundForm(forms.Form):
    """The order page's refund control: an amount, or units per line (`qty_<line id>` fields,
    read by the view), with a restock box. The refund rules themselves are `payments.refunds`'."""

    amount = forms.DecimalField(max_digits=12, decimal_places=2, required=False)
    restock = forms.BooleanField(required=False)
    reason = forms.CharField(max_length=200, required=False)


# ------------------------------------------------------------------ store settings

# The few settings the superusers' stores page edits per row (checkboxes and the review score).
STORE_SWITCHES = ("fraud_check_enabled", "fulfillment_autopilot", "fraud_review_threshold")

_TRUE, _FALSE = ("on", "true", "1"), ("off", "false", "0")


def _declared() -> dict[str, serializers.Field]:
    return dict(StoreSettingsSerializer().fields)


def _kind(field: serializers.Field) -> str:
    if isinstance(field, serializers.BooleanField):
        return "choice" if field.allow_null else "bool"
    if isinstance(field, serializers.ListField):
        return "list"
    if isinstance(field, serializers.CharField):
        return "text"
    return "number"


def parse_settings_form(post: Any, names: tuple[str, ...] = SETTING_NAMES) -> dict[str, Any]:
    """POSTed settings → the input `validate_store_settings` reads (it alone decides what is
    valid). A checkbox left out is off; an empty field with a platform default (`choice`, or a
    number that may be null) is null, i.e. back to the default; codes are comma-separated."""
    declared, data = _declared(), {}
    for name in names:
        field = declared[name]
        kind = _kind(field)
        if kind in ("bool", "choice") and name not in post:
            data[name] = False
            continue
        raw = str(post.get(name, "")).strip()
        if kind in ("bool", "choice"):
            lowered = raw.lower()
            if lowered in _TRUE:
                data[name] = True
            elif lowered in _FALSE:
                data[name] = False
            elif raw == "" and field.allow_null:
                data[name] = None
            else:
                data[name] = raw
        elif kind == "list":
            data[name] = [c.strip().upper() for c in raw.replace(" ", ",").split(",") if c.strip()]
        else:
            data[name] = None if raw == "" and field.allow_null else raw
    return data


def settings_form_fields(
    store: Store,
    current: dict[str, Any],
    *,
    submitted: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
) -> list[dict[str, Any]]:
    """One row per declared setting for the settings page: how to render it, its value (what was
    submitted, else the store's effective value), whether the store overrides the platform
    default, and its errors."""
    own = store.settings or {}
    rows = []
    for name, field in _declared().items():
        value = submitted[name] if submitted and name in submitted else current.get(name)
        kind = _kind(field)
        if kind == "list":
            shown = ", ".join(value or []) if isinstance(value, list) else str(value or "")
        elif kind == "choice":
            shown = {None: "", True: "on", False: "off"}.get(value, str(value))
        elif kind == "bool":
            shown = bool(value)
        else:
            shown = "" if value is None else str(value)
        rows.append(
            {
                "name": name,
                "label": name.replace("_", " ").capitalize(),
                "help": str(field.help_text or ""),
                "kind": kind,
                "value": shown,
                "nullable": bool(getattr(field, "allow_null", False)),
                "step": "0.01" if isinstance(field, serializers.DecimalField) else "1",
                "min": getattr(field, "min_value", None),
                "max": getattr(field, "max_value", None),
                "own": own.get(name) is not None,
                "errors": (errors or {}).get(name, []),
            }
        )
    return rows
