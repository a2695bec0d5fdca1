"""Beat sweeps webhook deliveries whose queued message never ran (broker down at enqueue time)."""

from django.db import migrations

from orderflow.core.schedules import ensure_periodic_task, remove_periodic_task


def create(apps, schema_editor):
    ensure_periodic_task(
        apps,
        name="webhooks: resend stale deliveries",
        task="alerts.resend_stale_deliveries",
        every_seconds=60,
    )


def remove(apps, schema_editor):
    remove_periodic_task(apps, name="webhooks: resend stale deliveries")


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, remove)]
