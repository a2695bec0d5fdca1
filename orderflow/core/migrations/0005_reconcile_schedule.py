"""Beat runs the reconciler — every app's own sweep of its stuck states (orderflow/core/reconcile.py)
— as one task every minute. The per-app entries it replaces are retired by payments 0007 and
fulfillment 0003."""

from django.db import migrations

from orderflow.core.schedules import ensure_periodic_task, remove_periodic_task

NAME = "reconciler: every app's sweep"


def create(apps, schema_editor):
    ensure_periodic_task(apps, name=NAME, task="core.reconcile", every_seconds=60)


def remove(apps, schema_editor):
    remove_periodic_task(apps, name=NAME)


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0004_apikey_scope"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, remove)]
