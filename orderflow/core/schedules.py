"""Periodic tasks as data (django-celery-beat), created by data migrations so they exist after
`migrate` and stay editable in the admin."""

from django.utils import timezone


def ensure_periodic_task(
    apps, *, name: str, task: str, every_seconds: float, queue: str | None = None
) -> None:
    """Create or update an interval PeriodicTask from a migration (historical models)."""
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    seconds = max(1, int(every_seconds))
    schedule, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
    PeriodicTask.objects.update_or_create(
        name=name,
        defaults={"task": task, "interval": schedule, "enabled": True, "queue": queue},
    )
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_periodic_task(apps, *, name: str, task: str | None = None) -> None:
    """Delete the entry named `name`; with `task`, also any entry (an operator may have renamed
    it) that would still call that task once it is gone."""
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=name).delete()
    if task is not None:
        PeriodicTask.objects.filter(task=task).delete()
