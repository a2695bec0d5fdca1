"""The outbox relay runs from beat every few seconds; created here so it exists after migrate."""

from django.db import migrations

from orderflow.core.schedules import ensure_periodic_task, remove_periodic_task


def create(apps, schema_editor):
    ensure_periodic_task(apps, name="outbox relay", task="core.relay_outbox", every_seconds=2)


def remove(apps, schema_editor):
    remove_periodic_task(apps, name="outbox relay")


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, remove)]
