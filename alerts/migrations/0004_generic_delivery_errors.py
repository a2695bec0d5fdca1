"""Deliveries recorded before `alerts/egress.py` kept the receiver's reply ("HTTP 500: <body>")
and exceptions' texts (hosts, ports) in `last_error` and `history`, which the deliveries API shows
the store. Reduce them to the generic texts kept now. The texts are copied, not imported: a
migration stays as it was written."""

import re

from django.db import migrations

GENERIC = {
    "",
    "endpoint is inactive",
    "address not allowed",
    "https required",
    "could not resolve host",
    "connection refused",
    "connection failed",
    "timed out",
    "TLS certificate not valid for host",
    "TLS handshake failed",
    "invalid response",
    "response too large",
}
ANSWERED = re.compile(r"^receiver answered \d{3}$")
OLD_HTTP = re.compile(r"^HTTP (\d{3})\b")


def generic(error: str) -> str:
    if error in GENERIC or ANSWERED.match(error):
        return error
    if m := OLD_HTTP.match(error):
        return f"receiver answered {m.group(1)}"
    if error.startswith("timed out") or "Timeout" in error:
        return "timed out"
    if "refused" in error.lower():
        return "connection refused"
    return "connection failed"


def scrub(apps, schema_editor):
    Delivery = apps.get_model("alerts", "WebhookDelivery")
    rows = Delivery._base_manager.only("pk", "last_error", "history").order_by("pk")
    for row in rows.iterator(chunk_size=2000):
        last_error = generic(row.last_error or "")
        history = [
            {**entry, "error": generic(entry.get("error") or "")} if isinstance(entry, dict) else entry
            for entry in row.history or []
        ]
        if last_error != row.last_error or history != row.history:
            Delivery._base_manager.filter(pk=row.pk).update(last_error=last_error, history=history)


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0003_alert_kinds_order_reconciled_expired"),
    ]

    operations = [migrations.RunPython(scrub, migrations.RunPython.noop)]
