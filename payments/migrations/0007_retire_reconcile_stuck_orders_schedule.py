"""The stuck-order reconciler is now every app's own sweep, driven by one beat task
(`core.reconcile`, core 0005): payments' own entry is retired (the task no longer exists)."""

from django.db import migrations

from orderflow.core.schedules import ensure_periodic_task, remove_periodic_task

NAME = "payments: reconcile stuck orders"
TASK = "payments.reconcile_stuck_orders"


def retire(apps, schema_editor):
    remove_periodic_task(apps, name=NAME, task=TASK)


def restore(apps, schema_editor):
    ensure_periodic_task(apps, name=NAME, task=TASK, every_seconds=60)


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0006_waiting_for_the_gateway"),
        ("core", "0005_reconcile_schedule"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(retire, restore)]
