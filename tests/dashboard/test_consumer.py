"""The websocket consumer over the real Redis channel layer (channels.testing)."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from dashboard import push
from dashboard.routing import websocket_urlpatterns
from orderflow.core.events import emit
from tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)

application = AuthMiddlewareStack(URLRouter(websocket_urlpatterns))


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """Each test runs its own event loop; a layer instance (and its receive lock) must not
    outlive the loop it was used on."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def _cookie_for(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def _communicator(path: str, user=None):
    """A factory (called inside the event loop) for a communicator carrying the user's session."""
    headers = [(b"cookie", _cookie_for(user).encode())] if user is not None else []
    return lambda: WebsocketCommunicator(application, path, headers=headers)


async def _connect(comm):
    connected, _ = await comm.connect(timeout=5)
    assert connected
    return await comm.receive_json_from(timeout=5)


def run(coro_fn):
    return async_to_sync(coro_fn)()


def test_member_joins_its_store_group_and_receives_its_pushes(store):
    user = make_user(store=store)

    make = _communicator(f"/ws/dashboard/?store={store.slug}", user)

    async def scenario():
        comm = make()
        assert await _connect(comm) == {"type": "hello", "store": store.slug}
        await comm.send_json_to({"type": "ping"})
        assert await comm.receive_json_from(timeout=5) == {"type": "pong"}
        await sync_to_async(push.send)(store.pk, {"type": "event", "event": {"topic": "order.created"}})
        assert await comm.receive_json_from(timeout=5) == {
            "type": "event",
            "event": {"topic": "order.created"},
        }
        await comm.disconnect()

    run(scenario)


def test_non_member_is_closed_with_4403(store, other_store):
    user = make_user(store=other_store)

    make = _communicator(f"/ws/dashboard/?store={store.slug}", user)

    async def scenario():
        comm = make()
        await comm.connect(timeout=5)
        assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}

    run(scenario)


def test_unknown_store_is_closed_with_4403(store):
    user = make_user(store=store)

    make = _communicator("/ws/dashboard/?store=nope", user)

    async def scenario():
        comm = make()
        await comm.connect(timeout=5)
        assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}

    run(scenario)


def test_anonymous_is_closed_with_4401(store):
    make = _communicator(f"/ws/dashboard/?store={store.slug}")

    async def scenario():
        comm = make()
        await comm.connect(timeout=5)
        assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}

    run(scenario)


def test_superuser_may_watch_any_store(store):
    admin = make_user(superuser=True)

    make = _communicator(f"/ws/dashboard/?store={store.slug}", admin)

    async def scenario():
        comm = make()
        assert (await _connect(comm))["store"] == store.slug
        await comm.disconnect()

    run(scenario)


def test_committed_events_reach_only_their_own_store_sockets(store, other_store):
    user_a, user_b = make_user(store=store), make_user(store=other_store)

    make_a = _communicator(f"/ws/dashboard/?store={store.slug}", user_a)
    make_b = _communicator(f"/ws/dashboard/?store={other_store.slug}", user_b)

    async def scenario():
        comm_a, comm_b = make_a(), make_b()
        await _connect(comm_a)
        await _connect(comm_b)

        from channels.db import database_sync_to_async

        @database_sync_to_async
        def emit_for_b():
            from django.db import transaction

            with transaction.atomic():
                emit("order.created", store=other_store, data={"n": 1})

        await emit_for_b()
        got = await comm_b.receive_json_from(timeout=5)
        assert got["type"] == "event"
        assert got["event"]["topic"] == "order.created"
        assert got["event"]["store"] == other_store.slug
        assert await comm_a.receive_nothing(timeout=0.5)
        await comm_a.disconnect()
        await comm_b.disconnect()

    run(scenario)


def test_alert_events_also_push_the_alert(store):
    user = make_user(store=store)
    alert_data = {"id": 7, "kind": "low_stock", "severity": "warning", "subject": "sku:X",
                  "message": "Low stock: X", "count": 1, "status": "open"}  # fmt: skip

    make = _communicator(f"/ws/dashboard/?store={store.slug}", user)

    async def scenario():
        comm = make()
        await _connect(comm)

        from channels.db import database_sync_to_async

        @database_sync_to_async
        def emit_alert():
            from django.db import transaction

            with transaction.atomic():
                emit("alert.opened", store=store, subject_type="alert", subject_id="7", data=alert_data)

        await emit_alert()
        messages = [await comm.receive_json_from(timeout=5) for _ in range(2)]
        assert [m["type"] for m in messages] == ["event", "alert"]
        alert = messages[1]["alert"]
        assert alert["kind"] == "low_stock" and alert["change"] == "opened" and alert["id"] == 7
        await comm.disconnect()

    run(scenario)


def test_a_failing_channel_layer_never_raises_into_the_publisher(store, settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
        }
    }
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    try:
        assert push.send(store.pk, {"type": "event"}) is False
    finally:
        channel_layers.backends.clear()


def test_stats_pushes_are_throttled_per_store(store, other_store):
    assert push.schedule_stats(store.pk) is True
    assert push.schedule_stats(store.pk) is False
    assert push.schedule_stats(other_store.pk) is True


def test_push_stats_task_sends_fresh_stats_to_the_store_group(store):
    from dashboard.tasks import push_stats

    user = make_user(store=store)
    make = _communicator(f"/ws/dashboard/?store={store.slug}", user)

    async def scenario():
        comm = make()
        await _connect(comm)
        assert await sync_to_async(push_stats)(store.pk) is True
        got = await comm.receive_json_from(timeout=5)
        assert got["type"] == "stats"
        assert got["stats"]["store"] == store.slug
        assert "orders_by_status" in got["stats"]
        await comm.disconnect()

    run(scenario)


def test_a_quiet_store_releases_the_stats_throttle_and_a_busy_one_pushes_again(store):
    from django.core.cache import cache

    from dashboard.tasks import push_stats

    assert push.schedule_stats(store.pk) is True
    assert push.schedule_stats(store.pk) is False  # throttled: marked dirty instead
    assert cache.get(push.dirty_key(store.pk))
    assert push_stats(store.pk, followup=True) is True  # dirty: pushes once more, stays armed
    assert push.schedule_stats(store.pk) is False
    push_stats(store.pk)  # the first run clears the mark
    cache.delete(push.dirty_key(store.pk))
    assert push_stats(store.pk, followup=True) is False  # quiet: key released
    assert push.schedule_stats(store.pk) is True


def test_a_dispatcher_batch_reaches_each_socket_as_single_frames_in_order(store, other_store, settings):
    """With OUTBOX_DISPATCHER on, a batch travels as one channel-layer message per store; every
    socket still gets one `event` frame per event, in commit order, and only its store's."""
    settings.OUTBOX_DISPATCHER = True
    user_a, user_b = make_user(store=store), make_user(store=other_store)
    make_a = _communicator(f"/ws/dashboard/?store={store.slug}", user_a)
    make_b = _communicator(f"/ws/dashboard/?store={other_store.slug}", user_b)

    async def scenario():
        comm_a, comm_b = make_a(), make_b()
        await _connect(comm_a)
        await _connect(comm_b)

        from channels.db import database_sync_to_async

        @database_sync_to_async
        def commit_and_dispatch():
            from django.db import transaction

            from orderflow.core.outbox import dispatch_pending

            with transaction.atomic():
                for n in range(3):
                    emit("order.created", store=store, data={"n": n})
            return dispatch_pending()

        assert await commit_and_dispatch() == 3
        got = [await comm_a.receive_json_from(timeout=5) for _ in range(3)]
        assert [(m["type"], m["event"]["data"]["n"]) for m in got] == [("event", n) for n in range(3)]
        assert await comm_b.receive_nothing(timeout=0.5)
        await comm_a.disconnect()
        await comm_b.disconnect()

    run(scenario)
