"""A NOTIFY on channel `orderflow_outbox` when a transaction that inserted events commits, so the
outbox dispatcher wakes at once instead of polling (orderflow/core/outbox.py). PostgreSQL only:
elsewhere the dispatcher polls. A statement-level trigger, and PostgreSQL folds identical
notifications of one transaction into one, so a transaction pays for one however many events it
wrote; nobody listening costs nothing more."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION orderflow_outbox_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('orderflow_outbox', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS core_event_outbox_notify ON core_event;
CREATE TRIGGER core_event_outbox_notify AFTER INSERT ON core_event
    FOR EACH STATEMENT EXECUTE FUNCTION orderflow_outbox_notify();
"""
DROP = """
DROP TRIGGER IF EXISTS core_event_outbox_notify ON core_event;
DROP FUNCTION IF EXISTS orderflow_outbox_notify();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("core", "0002_outbox_relay_schedule")]

    operations = [migrations.RunPython(create, drop)]
