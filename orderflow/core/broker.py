"""The broker transport: kombu's Redis transport, except that an ack (or reject) that cannot reach
Redis still frees the worker's prefetch slot.

Why. kombu's Redis QoS removes the message from Redis's unacked index first and only then forgets
the delivery locally; when Redis is down that first call raises, the delivery is never forgotten,
and the slot stays taken. With `acks_late` and a prefetch of one message per process, a Redis
outage that catches every process mid-task (each then "Couldn't ack") leaves no slot free: the
consumer never issues another BRPOP, so it never even notices the broker went away and came
back, and the worker sits idle for good while its queues fill. Found by the reliability suite's
Redis-outage scenario (tests/reliability/test_faults.py).

Forgetting the delivery locally is safe: the message stays in Redis's unacked index, the
visibility-timeout restore puts it back on its queue, and the task (idempotent, as every task
here is) runs again and finds its work done. That is the at-least-once promise `acks_late` makes.
"""

from __future__ import annotations

from kombu.transport import TRANSPORT_ALIASES, redis, virtual


class QoS(redis.QoS):
    def ack(self, delivery_tag):
        try:
            self._remove_from_indices(delivery_tag).execute()
        finally:
            virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag, requeue=False):
        try:
            if requeue:
                self.restore_by_tag(delivery_tag, leftmost=True)
            else:
                self._remove_from_indices(delivery_tag).execute()
        finally:
            virtual.QoS.ack(self, delivery_tag)


class Channel(redis.Channel):
    QoS = QoS


class Transport(redis.Transport):
    Channel = Channel


def install() -> None:
    """Make this transport the one every `redis://`, `rediss://` and `redis+socket://` broker URL
    resolves to, in every process that loads the Celery app (worker, beat, web, dispatcher)."""
    path = f"{__name__}:Transport"
    TRANSPORT_ALIASES["redis"] = path
    TRANSPORT_ALIASES["rediss"] = path
