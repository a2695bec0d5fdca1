"""The live socket stays up while nothing happens (issue #16, item 9).

channels_redis waits for a socket's next message with a blocking BZPOPMIN of
`RedisChannelLayer.brpop_timeout` seconds; redis-py 8 reads every reply with a 5 s socket timeout
by default, so an idle socket's wait lost the race: `Timeout reading from 127.0.0.1:6379` in the
server log and the page reconnecting every few seconds. The first test checks the layer's reads
carry no timeout to race the block; the second keeps a real socket on a real Daphne idle for 60 s."""

from __future__ import annotations

import json
import time

import pytest
from channels_redis.utils import create_pool, decode_hosts
from django.conf import settings
from django.test import Client
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from dashboard import push
from tests.browser.conftest import Daphne
from tests.factories import make_user

IDLE_SECONDS = 60  # the figure: five reconnects were seen within 50 s


def test_the_layers_redis_reads_wait_for_its_blocking_receive():
    """No read timeout to race the block (a dead peer is found by TCP keepalive instead; see
    settings.py and test_layer_cancel.py)."""
    for host in decode_hosts(settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]):
        kwargs = create_pool(host).connection_kwargs
        assert kwargs["socket_timeout"] is None and kwargs["socket_keepalive"] is True
        assert kwargs["socket_keepalive_options"]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_an_idle_dashboard_socket_stays_open_for_a_minute_then_still_receives(worker_env, store):
    user = make_user(store=store)
    client = Client()
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    server = Daphne(worker_env)
    try:
        ws_url = server.url.replace("http://", "ws://") + f"/ws/dashboard/?store={store.slug}"
        with connect(ws_url, additional_headers={"Cookie": cookie, "Origin": server.url}) as ws:
            assert json.loads(ws.recv(timeout=10)) == {"type": "hello", "store": store.slug}
            deadline = time.monotonic() + IDLE_SECONDS
            received = []
            while (left := deadline - time.monotonic()) > 0:
                try:
                    received.append(ws.recv(timeout=left))
                except TimeoutError:
                    break
                except ConnectionClosed as closed:
                    pytest.fail(f"the idle socket was closed: {closed!r}\n{server.output()[-3000:]}")
            assert received == []  # nothing happened, so nothing was pushed (and no close frame)

            ws.send(json.dumps({"type": "ping"}))
            assert json.loads(ws.recv(timeout=10)) == {"type": "pong"}
            push.send(store.pk, {"type": "event", "event": {"topic": "order.created"}})
            assert json.loads(ws.recv(timeout=10)) == {"type": "event", "event": {"topic": "order.created"}}
    finally:
        server.stop()
    log = server.output()
    assert "TimeoutError" not in log and "Traceback" not in log, log[-3000:]
