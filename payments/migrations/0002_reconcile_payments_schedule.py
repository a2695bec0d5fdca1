"""Beat re-drives payments whose task message was lost (Redis lost it, or a publish failed)."""

from django.db import migrations

from orderflow.core.schedules import ensure_periodic_task, remove_periodic_task


def create(apps, schema_editor):
    ensure_periodic_task(
        apps,
        name="payments: reconcile stuck payments",
        task="payments.reconcile_payments",
        every_seconds=60,
    )


def remove(apps, schema_editor):
    remove_periodic_task(apps, name="payments: reconcile stuck payments")


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, remove)]
