"""The broker transport (orderflow/core/broker.py) against a Redis that goes away mid-delivery: an ack
that cannot reach Redis must still free the consumer's prefetch slot, and the message must come
back for redelivery rather than be lost. On RabbitMQ (TEST_BROKER=rabbitmq) the same promise
against the suite's private node stopped mid-delivery."""

from __future__ import annotations

import contextlib
import time

import pytest
from kombu import Connection, Consumer, Exchange, Producer, Queue

from orderflow.core import broker
from tests.conftest import wait_until
from tests.reliability.conftest import ON_RABBITMQ, PrivateRedis

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


@pytest.fixture
def own_redis():
    r = PrivateRedis()
    r.start()
    yield r
    r.stop(persist=False)


def _deliver_one(conn: Connection, queue: Queue, got: list):
    producer = Producer(conn.channel(), serializer="json")
    producer.publish({"n": 1}, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue])
    channel = conn.channel()
    channel.basic_qos(0, 1, False)  # a prefork process's prefetch: one message at a time
    Consumer(channel, [queue], callbacks=[lambda _body, m: got.append(m)], accept=["json"]).consume()
    conn.drain_events(timeout=5)
    assert len(got) == 1
    return channel


@pytest.mark.parametrize("requeue", [None, False, True], ids=["ack", "reject", "reject-requeue"])
def test_an_ack_redis_never_heard_still_frees_the_slot_and_the_message_comes_back(own_redis, requeue):
    queue = Queue("of-broker-test", Exchange("of-broker-test"), routing_key="of-broker-test")
    got: list = []
    with Connection(own_redis.url, transport_options={"visibility_timeout": 1}) as conn:
        assert isinstance(conn.transport, broker.Transport), "every redis:// URL resolves to our transport"
        channel = _deliver_one(conn, queue, got)
        message = got[0]
        assert not channel.qos.can_consume(), "the one slot is taken by the delivery"

        own_redis.stop(persist=True)  # Redis keeps the unacked index on disk, as in production
        with pytest.raises(conn.connection_errors):
            message.ack() if requeue is None else message.reject(requeue=requeue)
        assert channel.qos.can_consume(), "a failed ack must not keep the prefetch slot forever"
        own_redis.start()

        # Redis never heard the ack: the message is still unacked there, and the visibility
        # restore puts it back on its queue (at-least-once; tasks are idempotent).
        r = own_redis.client()
        assert r.hexists("unacked", message.delivery_tag)
        time.sleep(1.2)  # past the visibility timeout
        wait_until(
            lambda: (channel.qos.restore_visible(num=10, interval=1) or True) and r.llen(queue.name) == 1,
            15,
            message="the unacked message back on its queue",
        )
        assert not r.hexists("unacked", message.delivery_tag)


if ON_RABBITMQ:

    def test_on_rabbitmq_a_message_unacked_when_the_node_stops_comes_back_after_its_restart(private_broker):
        """RabbitMQ form: a worker (prefetch one) holds a message unacked when the node stops. Its ack
        cannot be heard; the quorum queue kept the message on disk, and after the restart a new
        consumer gets it again, marked redelivered (at-least-once; tasks are idempotent)."""
        queue = broker.task_queues(broker.RABBITMQ, ["of-broker-test"])[0]
        got: list = []
        with Connection(private_broker.url, transport_options={"confirm_publish": True}) as conn:
            _deliver_one(conn, queue, got)
            assert not got[0].delivery_info["redelivered"]
            private_broker.stop(persist=True)
            with contextlib.suppress(*conn.connection_errors):  # the node is gone: nobody hears it
                got[0].ack()
        private_broker.start()

        again: list = []
        with Connection(private_broker.url) as conn:
            channel = conn.channel()
            channel.basic_qos(0, 1, False)
            Consumer(
                channel, [queue], callbacks=[lambda _body, m: again.append(m)], accept=["json"]
            ).consume()
            conn.drain_events(timeout=10)
            assert len(again) == 1 and again[0].payload == {"n": 1}
            assert again[0].delivery_info["redelivered"]
            again[0].ack()
            queue.bind(conn.channel()).delete()
