"""A store's own settings (`Store.settings`): the one declaration of what an owner may change, its
validation, and the write that records who changed what.

`GET/PATCH /api/v1/store` and the dashboard's settings page both go through here, so a value
accepted by one is accepted by the other. A `null` puts a setting back on the platform default.
"""

from __future__ import annotations

import functools
import zoneinfo
from typing import Any

from django.conf import settings
from django.db import transaction
from rest_framework import serializers

from .errors import ValidationFailed, flatten_fields
from .events import emit
from .store_events import StoreSettingsChanged
from .tenancy import Store


@functools.cache
def zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _valid_timezone(value: str) -> None:
    if value not in zone_names():
        raise serializers.ValidationError("Not a time zone name (IANA, e.g. Europe/Berlin).")


def store_timezone(store: Store) -> zoneinfo.ZoneInfo:
    """The zone the store's people read times in (the dashboard); the API answers in ISO 8601."""
    name = store.setting("timezone") or Store.DEFAULT_SETTINGS["timezone"]
    return zoneinfo.ZoneInfo(name if name in zone_names() else "UTC")


class StoreSettingsSerializer(serializers.Serializer):
    """Every setting an owner may change, with its bounds. All optional: a PATCH names what changes."""

    fraud_check_enabled = serializers.BooleanField(
        required=False, allow_null=True, help_text="Screen orders before payment."
    )
    fraud_review_threshold = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=100,
        help_text="Risk score that holds an order for review.",
    )
    fraud_reject_threshold = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=100,
        help_text="Risk score from which an order is rejected.",
    )
    fraud_amount_limit = serializers.DecimalField(
        required=False,
        allow_null=True,
        max_digits=12,
        decimal_places=2,
        min_value=0,
        coerce_to_string=True,
        help_text="Order totals above this add to the risk score.",
    )
    fraud_high_risk_countries = serializers.ListField(
        required=False,
        allow_null=True,
        child=serializers.RegexField(r"^[A-Z]{2}$", max_length=2),
        max_length=250,
        help_text="ISO 3166-1 alpha-2 codes whose shipping addresses add to the risk score.",
    )
    fulfillment_autopilot = serializers.BooleanField(
        required=False, allow_null=True, help_text="Walk fulfillments forward (null: platform default)."
    )
    order_expiry_minutes = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=7 * 24 * 60,
        help_text="Unpaid orders expire after this many minutes; 0 = never (null: platform default).",
    )
    payment_window_minutes = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text=(
            "How long, from when it was placed, an order waits out a gateway outage before it fails; "
            "at most as long as the card vault keeps the card (null: platform default)."
        ),
    )

    timezone = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=64,
        validators=[_valid_timezone],
        help_text="The store's time zone (IANA name, e.g. Europe/Berlin): the dashboard shows its "
        "times in it, 24 h. Null: UTC.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        store: Store | None = self.context.get("store")

        def value(name: str) -> Any:  # what the setting will be after this change
            if name in attrs:
                given = attrs[name]
                return Store.DEFAULT_SETTINGS.get(name) if given is None else given
            return store.setting(name) if store else Store.DEFAULT_SETTINGS.get(name)

        window = attrs.get("payment_window_minutes")
        if window is not None and window * 60 > settings.CARD_VAULT_TTL_SECONDS:
            raise serializers.ValidationError(
                {
                    "payment_window_minutes": [
                        f"Must not be above {settings.CARD_VAULT_TTL_SECONDS // 60}: the card vault "
                        "keeps the card no longer."
                    ]
                }
            )
        review, reject = value("fraud_review_threshold"), value("fraud_reject_threshold")
        if review is not None and reject is not None and int(review) > int(reject):
            raise serializers.ValidationError(
                {"fraud_review_threshold": ["Must not be above fraud_reject_threshold."]}
            )
        return attrs


SETTING_NAMES = tuple(StoreSettingsSerializer().fields)


def store_settings(store: Store) -> dict[str, Any]:
    """The store's effective settings: its own values over the platform defaults."""
    values = {name: store.setting(name) for name in SETTING_NAMES}
    return StoreSettingsSerializer(values).data


def validate_store_settings(store: Store, data: Any) -> dict[str, Any]:
    """The contract's 400 for anything the declaration above refuses; validated values otherwise."""
    serializer = StoreSettingsSerializer(data=data, context={"store": store}, partial=True)
    if not serializer.is_valid():
        raise ValidationFailed(fields=_flat(serializer.errors))
    return dict(serializer.validated_data)


def update_store_settings(*, store: Store, actor: str, changes: dict[str, Any]) -> Store:
    """Apply validated `changes` under the store's row lock and record a `store.settings_changed`
    event (who, from, to); a change to the value it already has is no change."""
    values = {k: (str(v) if k == "fraud_amount_limit" and v is not None else v) for k, v in changes.items()}
    with transaction.atomic():
        locked = Store.objects.select_for_update().get(pk=store.pk)
        current = dict(locked.settings or {})
        changed = {k: v for k, v in values.items() if current.get(k) != v}
        if changed:
            before = {k: locked.setting(k) for k in changed}
            for k, v in changed.items():
                if v is None:
                    current.pop(k, None)
                else:
                    current[k] = v
            locked.settings = current
            locked.save(update_fields=["settings"])
            emit(
                StoreSettingsChanged(
                    changes={k: {"from": before[k], "to": locked.setting(k)} for k in changed}
                ),
                store=locked,
                subject=locked,
                actor=actor,
            )
    store.settings = locked.settings
    return store


def _flat(errors: Any) -> dict[str, list[str]]:
    """DRF's errors by setting name; a list item's error says which item ("item 2: ...")."""
    out: dict[str, list[str]] = {}
    for path, messages in flatten_fields(errors).items():
        name, _, rest = path.partition("[")
        if rest:
            index = rest.split("]", 1)[0]
            messages = [f"item {int(index) + 1}: {m}" if index.isdigit() else m for m in messages]
        out.setdefault(name if name != "$" else "non_field_errors", []).extend(messages)
    return out
