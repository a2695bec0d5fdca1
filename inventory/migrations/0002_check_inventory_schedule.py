"""The low-stock watchdog runs from beat every 60 s; created here so it exists after migrate
(and stays editable in the admin)."""

from django.db import migrations

from orderflow.core.schedules import ensure_periodic_task, remove_periodic_task

NAME = "inventory: low-stock watchdog"


def create(apps, schema_editor):
    ensure_periodic_task(apps, name=NAME, task="inventory.check_inventory", every_seconds=60)


def remove(apps, schema_editor):
    remove_periodic_task(apps, name=NAME)


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, remove)]
