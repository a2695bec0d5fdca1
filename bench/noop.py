"""Imported by the bench workers (`celery worker -I bench.noop`): the no-op chain task the pipeline
is compared with, a ready flag, and a per-task-name counter that tells how many tasks an order
really takes.

`bench.noop(remaining)` does nothing but enqueue its successor, like a handler that enqueues the
next step: a chain of K tasks is K messages through the same broker, queues and worker pool as an
order's K tasks. The last one counts a finished chain in Redis.
"""

from __future__ import annotations

import os
from pathlib import Path

from celery import shared_task
from celery.signals import task_postrun, worker_ready

CHAINS_DONE = "bench:chains_done"
TASK_COUNTS = "bench:task_counts"


_client = None


def redis_client():
    global _client
    if _client is None:
        import redis
        from django.conf import settings

        _client = redis.Redis.from_url(settings.REDIS_URL)
    return _client


@shared_task(name="bench.noop", acks_late=True, ignore_result=True)
def noop(remaining: int, queue: str = "default") -> None:
    if remaining > 1:
        noop.apply_async(args=[remaining - 1, queue], queue=queue)
    else:
        redis_client().incr(CHAINS_DONE)


@worker_ready.connect
def _flag_ready(**kwargs) -> None:
    path = os.environ.get("BENCH_READY_FILE")
    if path:
        Path(path).write_text(str(os.getpid()))


@task_postrun.connect
def _count_task(sender=None, **kwargs) -> None:
    if os.environ.get("BENCH_COUNT_TASKS") == "1" and sender is not None:
        try:
            redis_client().hincrby(TASK_COUNTS, sender.name, 1)
        except Exception:
            pass
