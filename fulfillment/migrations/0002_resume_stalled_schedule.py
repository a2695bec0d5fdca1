"""Beat restarts broken autopilot / carrier chains every 30 s (see fulfillment/watchdog.py)."""

from django.db import migrations

from orderflow.core.schedules import ensure_periodic_task, remove_periodic_task

NAME = "fulfillment: resume stalled autopilot and carrier"


def create(apps, schema_editor):
    ensure_periodic_task(apps, name=NAME, task="fulfillment.resume_stalled", every_seconds=30)


def remove(apps, schema_editor):
    remove_periodic_task(apps, name=NAME)


class Migration(migrations.Migration):
    dependencies = [
        ("fulfillment", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, remove)]
