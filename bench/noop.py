"""Imported by the bench workers (`celery worker -I bench.noop`): the no-op chain task the pipeline
is compared with, a ready flag, and a per-task-name counter that tells how many tasks an order
really takes.

`bench.noop(remaining)` does nothing but enqueue its successor, like a handler that enqueues the
next step: a chain of K tasks is K messages through the same broker, queues and worker pool as an
order's K tasks. The last one counts a finished chain in Redis.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery import shared_task
from celery.signals import task_postrun, task_prerun, worker_ready

CHAINS_DONE = "bench:chains_done"
TASK_COUNTS = "bench:task_counts"
# CPU microseconds spent inside each task, by name (this process's CPU clock, so it does not count
# time waiting on PostgreSQL, Redis or the gateway, nor other processes sharing the cores)
TASK_CPU_US = "bench:task_cpu_us"

_started: dict[str, float] = {}


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


@task_prerun.connect
def _start_clock(task_id=None, **kwargs) -> None:
    if os.environ.get("BENCH_COUNT_TASKS") == "1" and task_id is not None:
        _started[task_id] = time.process_time()


@task_postrun.connect
def _count_task(sender=None, task_id=None, **kwargs) -> None:
    if os.environ.get("BENCH_COUNT_TASKS") == "1" and sender is not None:
        cpu = time.process_time() - _started.pop(task_id, time.process_time())
        try:
            pipe = redis_client().pipeline(transaction=False)
            pipe.hincrby(TASK_COUNTS, sender.name, 1)
            pipe.hincrby(TASK_CPU_US, sender.name, int(cpu * 1_000_000))
            pipe.execute()
        except Exception:
            pass
