"""Beat probes an open breaker every 5 s so it closes (and `gateway_down` resolves) without traffic."""

from django.db import migrations

from orderflow.core.schedules import ensure_periodic_task, remove_periodic_task

NAME = "payments: probe the gateway while the breaker is open"


def create(apps, schema_editor):
    ensure_periodic_task(apps, name=NAME, task="payments.probe_gateway", every_seconds=5)


def remove(apps, schema_editor):
    remove_periodic_task(apps, name=NAME)


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0003_reconcile_stuck_orders_schedule"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, remove)]
