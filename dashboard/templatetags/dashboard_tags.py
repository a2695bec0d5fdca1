"""Small formatting filters for the dashboard templates (the JS formats live updates the same way)."""

import json
from datetime import datetime

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def duration(seconds) -> str:
    """42 s · 3.5 min · 2.1 h · 1.5 d; an em dash when unknown."""
    if seconds is None or seconds == "":
        return "—"
    s = float(seconds)
    if s < 90:
        return f"{s:.0f} s" if s >= 10 else f"{s:.1f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


@register.filter
def days(value) -> str:
    """Days of cover and the like: a number with its unit ("12.5 days", "1 day")."""
    if value is None or value == "":
        return "—"
    d = float(value)
    return "1 day" if d == 1 else f"{d:.1f} days"


@register.filter
def clock(value) -> str:
    """24 h time in the active (the store's) time zone, from a datetime or an ISO 8601 string."""
    if not value:
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    return (
        timezone.localtime(value).strftime("%H:%M:%S")
        if timezone.is_aware(value)
        else value.strftime("%H:%M:%S")
    )


@register.filter
def pct(rate) -> str:
    if rate is None or rate == "":
        return "—"
    return f"{float(rate) * 100:.1f} %"


@register.filter
def get(mapping, key):
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, indent=1, sort_keys=True, default=str) if value else ""
