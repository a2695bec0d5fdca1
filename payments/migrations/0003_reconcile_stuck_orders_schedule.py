"""Beat runs the stuck-order reconciler every minute. It includes the payment/refund re-drive, so
the older "reconcile stuck payments" entry is retired (one job owns the sweep; the task itself
stays callable)."""

from django.db import migrations

from orderflow.core.schedules import ensure_periodic_task, remove_periodic_task

NAME = "payments: reconcile stuck orders"
OLD = "payments: reconcile stuck payments"


def create(apps, schema_editor):
    ensure_periodic_task(apps, name=NAME, task="payments.reconcile_stuck_orders", every_seconds=60)
    remove_periodic_task(apps, name=OLD)


def remove(apps, schema_editor):
    remove_periodic_task(apps, name=NAME)
    ensure_periodic_task(apps, name=OLD, task="payments.reconcile_payments", every_seconds=60)


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0002_reconcile_payments_schedule"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, remove)]
