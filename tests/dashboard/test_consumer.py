"""The websocket consumer over the real Redis channel layer (channels.testing)."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.core.cache import cache
from django.test import Client

from dashboard import push, tasks
from dashboard.routing import websocket_urlpatterns
from orderflow.core.events import write_event
from orderflow.core.outbox import dispatch_pending
from orderflow.core.tenancy import StoreMembership
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
                write_event("order.created", store=other_store, data={"n": 1})
            dispatch_pending()  # the one publishing path, as the dispatcher process runs it

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
                write_event(
                    "alert.opened", store=store, subject_type="alert", subject_id="7", data=alert_data
                )
            dispatch_pending()

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
    assert tasks.schedule_stats(store.pk) is True
    assert tasks.schedule_stats(store.pk) is False
    assert tasks.schedule_stats(other_store.pk) is True


def test_push_stats_task_sends_fresh_stats_to_the_store_group(store):
    user = make_user(store=store)
    make = _communicator(f"/ws/dashboard/?store={store.slug}", user)

    async def scenario():
        comm = make()
        await _connect(comm)
        assert await sync_to_async(tasks.push_stats)(store.pk) is True
        got = await comm.receive_json_from(timeout=5)
        assert got["type"] == "stats"
        assert got["stats"]["store"] == store.slug
        assert "orders_by_status" in got["stats"]
        await comm.disconnect()

    run(scenario)


def test_a_quiet_store_releases_the_stats_throttle_and_a_busy_one_pushes_again(store):
    assert tasks.schedule_stats(store.pk) is True
    assert tasks.schedule_stats(store.pk) is False  # throttled: marked dirty instead
    assert cache.get(tasks.dirty_key(store.pk))
    assert tasks.push_stats(store.pk, followup=True) is True  # dirty: pushes once more, stays armed
    assert tasks.schedule_stats(store.pk) is False
    tasks.push_stats(store.pk)  # the first run clears the mark
    cache.delete(tasks.dirty_key(store.pk))
    assert tasks.push_stats(store.pk, followup=True) is False  # quiet: key released
    assert tasks.schedule_stats(store.pk) is True


def test_a_dispatcher_batch_reaches_each_socket_as_single_frames_in_order(store, other_store, settings):
    """A dispatcher batch travels as one channel-layer message per store; every socket still gets
    one `event` frame per event, in commit order, and only its store's."""
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
                    write_event("order.created", store=store, data={"n": n})
            return dispatch_pending()

        assert await commit_and_dispatch() == 3
        got = [await comm_a.receive_json_from(timeout=5) for _ in range(3)]
        assert [(m["type"], m["event"]["data"]["n"]) for m in got] == [("event", n) for n in range(3)]
        assert await comm_b.receive_nothing(timeout=0.5)
        await comm_a.disconnect()
        await comm_b.disconnect()

    run(scenario)


# ------------------------------------------------------- sockets follow membership (issue #14)


def _session_for(user) -> tuple[Client, str]:
    """A logged-in browser of `user`: its client and its session key (the cookie)."""
    client = Client()
    client.force_login(user)
    return client, client.cookies[settings.SESSION_COOKIE_NAME].value


def _socket(path: str, session_key: str):
    headers = [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={session_key}".encode())]
    return lambda: WebsocketCommunicator(application, path, headers=headers)


CLOSED_4401 = {"type": "websocket.close", "code": 4401}
CLOSED_4403 = {"type": "websocket.close", "code": 4403}


async def _push_is_not_received(comm, store):
    await sync_to_async(push.send)(store.pk, {"type": "event", "event": {"topic": "order.created"}})
    assert await comm.receive_nothing(timeout=0.3)


def _delete_membership_without_signals(user, store):
    """As a bulk SQL delete would: no post_delete, so only the periodic re-check can notice."""
    from django.db import connection

    table = StoreMembership._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE user_id = %s AND store_id = %s", [user.pk, store.pk])


def test_the_periodic_recheck_closes_the_socket_of_a_removed_member(store):
    user = make_user(store=store)
    _, key = _session_for(user)
    make = _socket(f"/ws/dashboard/?store={store.slug}", key)

    async def scenario():
        comm = make()
        await _connect(comm)
        await sync_to_async(_delete_membership_without_signals)(user, store)
        assert await comm.receive_output(timeout=10) == CLOSED_4403
        await _push_is_not_received(comm, store)

    run(scenario)


def test_the_periodic_recheck_closes_the_socket_of_an_ended_session(store):
    from importlib import import_module

    user = make_user(store=store)
    _, key = _session_for(user)
    make = _socket(f"/ws/dashboard/?store={store.slug}", key)

    async def scenario():
        comm = make()
        await _connect(comm)
        await sync_to_async(import_module(settings.SESSION_ENGINE).SessionStore(key).delete)()
        assert await comm.receive_output(timeout=10) == CLOSED_4401
        await _push_is_not_received(comm, store)

    run(scenario)


def test_the_periodic_recheck_closes_the_socket_of_a_deactivated_user(store):
    user = make_user(store=store)
    _, key = _session_for(user)
    make = _socket(f"/ws/dashboard/?store={store.slug}", key)

    async def scenario():
        comm = make()
        await _connect(comm)
        user.is_active = False
        await sync_to_async(user.save)(update_fields=["is_active"])
        assert await comm.receive_output(timeout=10) == CLOSED_4401

    run(scenario)


def test_removing_a_membership_closes_its_sockets_at_once(store, settings):
    """With a re-check far away, only the post_delete message can close it in time."""
    settings.DASHBOARD_SOCKET_RECHECK_SECONDS = 600
    user = make_user(store=store)
    _, key = _session_for(user)
    make = _socket(f"/ws/dashboard/?store={store.slug}", key)

    async def scenario():
        comm = make()
        await _connect(comm)
        await sync_to_async(StoreMembership.objects.filter(user=user, store=store).delete)()
        assert await comm.receive_output(timeout=5) == CLOSED_4403
        await _push_is_not_received(comm, store)

    run(scenario)


def test_removing_a_membership_of_another_store_leaves_the_socket_open(store, other_store, settings):
    settings.DASHBOARD_SOCKET_RECHECK_SECONDS = 600
    user = make_user(store=store)
    StoreMembership.objects.create(store=other_store, user=user)
    _, key = _session_for(user)
    make = _socket(f"/ws/dashboard/?store={store.slug}", key)

    async def scenario():
        comm = make()
        await _connect(comm)
        await sync_to_async(StoreMembership.objects.filter(user=user, store=other_store).delete)()
        assert await comm.receive_nothing(timeout=0.5)
        await sync_to_async(push.send)(store.pk, {"type": "event", "event": {"topic": "order.created"}})
        assert (await comm.receive_json_from(timeout=5))["type"] == "event"
        await comm.disconnect()

    run(scenario)


def test_logging_out_closes_that_sessions_sockets_at_once_and_not_the_users_others(store, settings):
    settings.DASHBOARD_SOCKET_RECHECK_SECONDS = 600
    user = make_user(store=store)
    browser, key = _session_for(user)
    _, other_key = _session_for(user)
    make = _socket(f"/ws/dashboard/?store={store.slug}", key)
    make_other = _socket(f"/ws/dashboard/?store={store.slug}", other_key)

    async def scenario():
        comm, other = make(), make_other()
        await _connect(comm)
        await _connect(other)
        response = await sync_to_async(browser.post)("/admin/logout/")
        assert response.status_code in (200, 302)
        assert await comm.receive_output(timeout=5) == CLOSED_4401
        await sync_to_async(push.send)(store.pk, {"type": "event", "event": {"topic": "order.created"}})
        assert await comm.receive_nothing(timeout=0.3)
        assert (await other.receive_json_from(timeout=5))["type"] == "event"
        await other.disconnect()

    run(scenario)


def test_a_superuser_socket_stays_while_rechecked(store):
    admin = make_user(superuser=True)
    _, key = _session_for(admin)
    make = _socket(f"/ws/dashboard/?store={store.slug}", key)

    async def scenario():
        comm = make()
        await _connect(comm)
        assert await comm.receive_nothing(timeout=1.5)  # several re-checks at the test interval
        await sync_to_async(push.send)(store.pk, {"type": "event", "event": {"topic": "order.created"}})
        assert (await comm.receive_json_from(timeout=5))["type"] == "event"
        await comm.disconnect()

    run(scenario)
