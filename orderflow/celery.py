"""The Celery app: configured from Django settings (CELERY_*), tasks found in every app."""

import os

from celery import Celery
from celery.signals import task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orderflow.settings")

app = Celery("orderflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["orderflow.core"])


@task_prerun.connect
def _fresh_enough_connections(task=None, **kwargs) -> None:
    """Treat each task like a request: drop connections that broke or outlived CONN_MAX_AGE (the
    fix-up no longer closes them every time; see CELERY_DB_REUSE_MAX). Not for eager tasks: they
    run inside the caller's (a test's) transaction, like the fix-up's own hook."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
