"""The Celery app: configured from Django settings (CELERY_*), tasks found in every app."""

import os
import time

from celery import Celery
from celery.signals import (
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
)
from celery.utils.quorum_queues import detect_quorum_queues

from orderflow.core import broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orderflow.settings")
broker.install()  # before the app makes its first broker connection


class OrderFlowCelery(Celery):
    # The brokers on which this process made sure of the delayed-delivery exchanges and queues.
    _delays_declared: set[str] = set()

    def send_task(self, name, args=None, kwargs=None, countdown=None, eta=None, **options):
        """On quorum queues a countdown is RabbitMQ's to hold, in whole seconds (broker.whole_seconds)."""
        if (countdown or eta) and detect_quorum_queues(self, self._broker_driver())[0]:
            countdown, eta = broker.whole_seconds(countdown, eta, self.now()), None
            if countdown and self.conf.broker_url not in self._delays_declared:
                self._declare_delays()
        return super().send_task(name, args, kwargs, countdown=countdown, eta=eta, **options)

    def _declare_delays(self) -> None:
        """What every worker declares at start (Celery's DelayedDelivery bootstep), once per process
        here too: a countdown published before any worker ever ran on this vhost (the web, the
        dispatcher) would otherwise meet no `celery_delayed_27` exchange and be refused (404).
        Declaring is idempotent; the exchanges and quorum queues are durable."""
        from kombu.transport.native_delayed_delivery import (
            bind_queue_to_native_delayed_delivery_exchange,
            declare_native_delayed_delivery_exchanges_and_queues,
        )

        with self.connection_for_write() as conn:
            declare_native_delayed_delivery_exchanges_and_queues(
                conn, self.conf.broker_native_delayed_delivery_queue_type
            )
            for queue in self.amqp.queues.values():
                queue(conn.default_channel).declare()  # the queue and its exchange, to bind them
                bind_queue_to_native_delayed_delivery_exchange(conn, queue)
        self._delays_declared.add(self.conf.broker_url)

    def _broker_driver(self) -> str:
        return "amqp" if broker.kind(self.conf.broker_url or "") == broker.RABBITMQ else "redis"


app = OrderFlowCelery("orderflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["orderflow.core"])


@worker_init.connect
def _trace_solo_worker(sender=None, **kwargs) -> None:
    """Tracing for a worker that runs tasks in its own process (solo, threads pools); a prefork
    worker's children set it up themselves, after the fork (below)."""
    from celery.concurrency import get_implementation
    from celery.concurrency.prefork import TaskPool

    if not issubclass(get_implementation(sender.pool_cls), TaskPool):
        from orderflow.observability.tracing import setup_tracing

        setup_tracing("worker")


@worker_process_init.connect
def _trace_pool_process(**kwargs) -> None:
    """Tracing in each prefork child (no-op unless OTEL_EXPORTER_OTLP_ENDPOINT is set)."""
    from orderflow.observability.tracing import setup_tracing

    setup_tracing("worker")


@worker_process_shutdown.connect
def _flush_traces(**kwargs) -> None:
    """Export the child's buffered spans before it exits (max_tasks_per_child, shutdown)."""
    from orderflow.observability.tracing import shutdown_tracing

    shutdown_tracing()


# When the previous task of this process ended; a connection used that recently is not pinged.
_last_task_end = 0.0


@task_prerun.connect
def _fresh_enough_connections(task=None, **kwargs) -> None:
    """Treat each task like a request: drop connections that broke or outlived CONN_MAX_AGE (the
    fix-up no longer closes them every time; see CELERY_DB_REUSE_MAX). Not for eager tasks: they
    run inside the caller's (a test's) transaction, like the fix-up's own hook.

    The CONN_HEALTH_CHECKS ping (a `SELECT 1` round trip) is skipped when this process finished a
    task less than CELERY_DB_HEALTH_CHECK_IDLE_SECONDS ago: under load it was one statement in ten,
    and a connection that just worked is not the one a server restart or an idle timeout took. A
    connection that broke mid-task is still replaced before the next task (errors_occurred)."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.conf import settings
    from django.db import close_old_connections, connections

    close_old_connections()
    if time.monotonic() - _last_task_end < settings.CELERY_DB_HEALTH_CHECK_IDLE_SECONDS:
        for conn in connections.all(initialized_only=True):
            if conn.connection is not None and not conn.errors_occurred:
                conn.health_check_done = True


@task_postrun.connect
def _task_ended(task=None, **kwargs) -> None:
    global _last_task_end
    _last_task_end = time.monotonic()
