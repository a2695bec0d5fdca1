"""The idempotency-key purge runs from beat every hour; created here so it exists after migrate
(and stays editable in the admin)."""

from django.db import migrations

from orderflow.core.schedules import ensure_periodic_task, remove_periodic_task

NAME = "orders: purge idempotency keys"


def create(apps, schema_editor):
    ensure_periodic_task(apps, name=NAME, task="orders.purge_idempotency_keys", every_seconds=3600)


def remove(apps, schema_editor):
    remove_periodic_task(apps, name=NAME)


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0002_idempotency_last_replayed_at"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, remove)]
