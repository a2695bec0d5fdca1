"""Resuming stalled autopilot / carrier chains is now fulfillment's reconciler sweep
(fulfillment/watchdog.py), run by the one beat task `core.reconcile` (core 0005): its own 30 s
entry is retired (the task no longer exists)."""

from django.db import migrations

from orderflow.core.schedules import ensure_periodic_task, remove_periodic_task

NAME = "fulfillment: resume stalled autopilot and carrier"
TASK = "fulfillment.resume_stalled"


def retire(apps, schema_editor):
    remove_periodic_task(apps, name=NAME, task=TASK)


def restore(apps, schema_editor):
    ensure_periodic_task(apps, name=NAME, task=TASK, every_seconds=30)


class Migration(migrations.Migration):
    dependencies = [
        ("fulfillment", "0002_resume_stalled_schedule"),
        ("core", "0005_reconcile_schedule"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(retire, restore)]
