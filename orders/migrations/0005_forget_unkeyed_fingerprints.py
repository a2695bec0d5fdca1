"""Blank the idempotency fingerprints written before they were keyed.

They were a plain SHA-256 of the whole body, card number and CVC included: with the order's brand
and last four, a short brute force gave the card back. They cannot be turned into the keyed form
(that needs the body), so they are dropped; `idempotency.existing_response` replays a key whose
record has none, whatever the body, until the record expires (IDEMPOTENCY_KEY_TTL_HOURS)."""

from django.db import migrations


def blank_fingerprints(apps, schema_editor):
    IdempotencyRecord = apps.get_model("orders", "IdempotencyRecord")
    IdempotencyRecord._base_manager.exclude(fingerprint="").update(fingerprint="")


class Migration(migrations.Migration):
    dependencies = [("orders", "0004_fraud_lookup_indexes")]

    operations = [migrations.RunPython(blank_fingerprints, migrations.RunPython.noop)]
