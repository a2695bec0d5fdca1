"""The broker: which one a URL names (Redis or RabbitMQ), the queues declared on each, and kombu's
Redis transport, except that an ack (or reject) that cannot reach Redis still frees the worker's
prefetch slot.

Which broker. `kind()` is the one place that reads it from the URL; settings.py derives every
broker-specific setting from its answer (BROKER_KIND), and nothing else looks at the URL's scheme.

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

import math
from collections.abc import Iterable
from datetime import datetime

from kombu import Exchange, Queue
from kombu.transport import TRANSPORT_ALIASES, redis, virtual

REDIS, RABBITMQ = "redis", "rabbitmq"
AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")
QUEUE_TYPES = ("quorum", "classic")


def kind(url: str) -> str:
    """RABBITMQ for an AMQP URL (`amqp://`, `amqps://`, `pyamqp://`), else REDIS (`redis://`,
    `rediss://`, `redis+socket://`)."""
    scheme = url.split("://", 1)[0].lower()
    return RABBITMQ if scheme in AMQP_SCHEMES else REDIS


def redis_transport_options(*, visibility_timeout: int) -> dict:
    """kombu's Redis transport options.

    `visibility_timeout`: longer than the longest task and any retry countdown (a countdown past it
    is redelivered again and again by Redis). `queue_order_strategy="priority"`: a worker on
    several queues (`make run`'s one worker) takes the next message from the first of them that
    has one, in the order it names them (`-Q`; without it, CELERY_TASK_QUEUES' order), instead of
    round robin. Under a burst the new orders are then charged before the warehouse steps of those
    already paid: a charge has a deadline (the payment window, the card vault's TTL), a pick or a
    pack has none. A worker per queue (deploy/Procfile) is not affected; neither is RabbitMQ,
    where each consumed queue delivers as it fills."""
    return {
        "visibility_timeout": visibility_timeout,
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
        "queue_order_strategy": "priority",
    }


def task_queues(broker: str, names: Iterable[str], *, queue_type: str = "quorum") -> list[Queue]:
    """The Celery queues, by name. On Redis plain queues (a list each). On RabbitMQ each is durable,
    of `queue_type` (quorum: replicated, and survives a node restart with its messages), and bound
    to a topic exchange of its own name: Celery's native delayed delivery, which quorum queues need
    for countdowns, routes a delayed message back through the queue's exchange by a topic pattern
    and cannot use a direct exchange (the default)."""
    if broker != RABBITMQ:
        return [Queue(name) for name in names]
    if queue_type not in QUEUE_TYPES:
        raise ValueError(f"RabbitMQ queue type {queue_type!r}: expected one of {', '.join(QUEUE_TYPES)}")
    return [
        Queue(
            name,
            Exchange(name, type="topic", durable=True),
            routing_key=name,
            durable=True,
            queue_arguments={"x-queue-type": queue_type},
        )
        for name in names
    ]


def waiting(conn, names: Iterable[str]) -> dict[str, int]:
    """Messages waiting in each named queue, on an open kombu connection to either broker: one
    passive declare per queue (Redis: the length of its lists, one per priority level; RabbitMQ:
    the queue's ready messages). A queue the broker does not have holds nothing; RabbitMQ closes
    the channel on that 404, so the next queue gets a new one."""
    counts = {}
    channel = conn.channel()
    try:
        for name in names:
            try:
                counts[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
            except conn.channel_errors:  # never declared, or (on Redis) empty
                counts[name] = 0
                if not getattr(channel, "is_open", True):
                    channel = conn.channel()
    finally:
        try:
            channel.close()
        except Exception:  # a channel already closed
            pass
    return counts


def whole_seconds(countdown: float | None, eta: datetime | str | None, now: datetime) -> float | None:
    """A task's delay as RabbitMQ's native delayed delivery can hold it: whole seconds, rounded up.

    Celery routes a delayed message by `int(countdown)` and refuses a countdown under a second
    (kombu's `calculate_routing_key`): 0.5 s raised, 1.7 s came back after 1 s with an ETA the
    worker then waited out holding its one prefetch slot (per-consumer prefetch is fixed on quorum
    queues). Rounded up, the broker holds the whole delay and a task never runs early. None when
    there is no delay."""
    if isinstance(eta, str):
        eta = datetime.fromisoformat(eta)
    if eta is not None and not countdown:
        countdown = (eta - now).total_seconds()
    if countdown is None or countdown <= 0:
        return None
    return float(math.ceil(countdown))


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
