"""Task logging: one line per task with its id, store and order (from its kwargs/args)."""

import logging
import time

from celery.signals import task_postrun, task_prerun

log = logging.getLogger("orderflow.task")
_started: dict[str, float] = {}


@task_prerun.connect
def _task_started(task_id=None, task=None, **_):
    _started[task_id] = time.perf_counter()


@task_postrun.connect
def _task_finished(task_id=None, task=None, args=None, kwargs=None, state=None, **_):
    began = _started.pop(task_id, None)
    ms = (time.perf_counter() - began) * 1000 if began else 0.0
    kwargs = kwargs or {}
    log.info(
        "task %s %s %s %.1fms",
        task.name if task else "?",
        task_id,
        state,
        ms,
        extra={
            "request_id": task_id,
            "store": str(kwargs.get("store_id", "-")),
            "order_id": str(kwargs.get("order_id", "-")),
        },
    )
