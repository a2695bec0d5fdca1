"""Outgoing webhooks: the API (secret once, validation, tenancy), topic matching, and signed
deliveries to a real HTTP receiver (2xx, 5xx retried, 4xx not retried, redeliver)."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts import webhooks
from alerts.models import WebhookDelivery, WebhookEndpoint
from alerts.tasks import deliver_webhook
from orderflow.core.events import Event, registered_handlers
from tests.alerts.support import fire, queued_tasks

pytestmark = pytest.mark.django_db


def create(api, url, topics=("order.*",), **extra):
    r = api.post("/api/v1/webhooks", {"url": url, "topics": list(topics), **extra}, format="json")
    assert r.status_code == 201, r.content
    return r.json()


def send(delivery) -> str:
    """Run the delivery task in this process, retries included (Celery's eager apply)."""
    return deliver_webhook.apply(args=[str(delivery.pk), delivery.store_id]).get()


# ------------------------------------------------------------------------------------- API


def test_create_answers_201_with_the_secret_shown_only_once(api):
    created = create(api, "https://hooks.example.com/of", ["order.*", "alert.opened"])
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 30
    assert created["topics"] == ["order.*", "alert.opened"] and created["active"] is True
    detail = api.get(f"/api/v1/webhooks/{created['id']}")
    assert detail.status_code == 200 and "secret" not in detail.json()
    listed = api.get("/api/v1/webhooks").json()
    assert [w["id"] for w in listed["results"]] == [created["id"]]
    assert "secret" not in listed["results"][0]


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/of",
        "ftp://hooks.example.com/",
        "not a url",
        "",
        "https://user:pw@example.com/",
    ],
)
def test_a_url_that_is_not_https_is_400(api, url):
    r = api.post("/api/v1/webhooks", {"url": url, "topics": ["*"]}, format="json")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "validation_error"
    assert "url" in r.json()["error"]["fields"]
    assert not WebhookEndpoint.all_stores.exists()


def test_plain_http_to_localhost_is_allowed_only_where_the_setting_says(api, settings):
    assert create(api, "http://127.0.0.1:9999/hook")["url"] == "http://127.0.0.1:9999/hook"
    settings.WEBHOOKS_ALLOW_HTTP_LOCALHOST = False
    r = api.post("/api/v1/webhooks", {"url": "http://localhost:9999/hook", "topics": ["*"]}, format="json")
    assert r.status_code == 400 and "url" in r.json()["error"]["fields"]


@pytest.mark.parametrize(
    "topics, field",
    [([], "topics"), (None, "topics"), (["Order Created"], "topics[0]"), (["*", ""], "topics[1]")],
)
def test_topics_must_be_a_non_empty_list_of_patterns(api, topics, field):
    r = api.post("/api/v1/webhooks", {"url": "https://x.example.com", "topics": topics}, format="json")
    assert r.status_code == 400
    assert field in r.json()["error"]["fields"]


def test_patch_changes_topics_and_active_and_delete_removes_it(api):
    created = create(api, "https://x.example.com/h")
    r = api.patch(
        f"/api/v1/webhooks/{created['id']}", {"topics": ["payment.*"], "active": False}, format="json"
    )
    assert r.status_code == 200
    assert (r.json()["topics"], r.json()["active"]) == (["payment.*"], False)
    bad = api.patch(f"/api/v1/webhooks/{created['id']}", {"url": "http://x.example.com"}, format="json")
    assert bad.status_code == 400
    assert api.delete(f"/api/v1/webhooks/{created['id']}").status_code == 204
    assert api.get(f"/api/v1/webhooks/{created['id']}").status_code == 404


def test_another_store_cannot_see_or_touch_a_stores_webhooks_or_deliveries(api, api_b, store, receiver):
    created = create(api, receiver.url, ["*"])
    fire(store, "order.created", {})
    delivery = WebhookDelivery.all_stores.get(endpoint_id=created["id"])
    base = f"/api/v1/webhooks/{created['id']}"
    assert api_b.get("/api/v1/webhooks").json()["count"] == 0
    assert api_b.get(base).status_code == 404
    assert api_b.patch(base, {"active": False}, format="json").status_code == 404
    assert api_b.delete(base).status_code == 404
    assert api_b.get(f"{base}/deliveries").status_code == 404
    assert api_b.post(f"{base}/deliveries/{delivery.pk}/redeliver").status_code == 404
    assert WebhookEndpoint.all_stores.get(pk=created["id"]).active is True


# ---------------------------------------------------------------------------- topic match


def test_only_active_endpoints_whose_topics_match_get_a_delivery(api, store, other_store, receiver):
    orders = create(api, receiver.url, ["order.*"])
    everything = create(api, receiver.url, ["*"])
    opened = create(api, receiver.url, ["alert.opened"])
    create(api, receiver.url, ["*"], active=False)
    fire(store, "order.created", {})
    fire(store, "payment.processed", {})
    fire(other_store, "order.created", {})  # another store's event reaches none of them
    by_endpoint = {}
    for d in WebhookDelivery.all_stores.all():
        by_endpoint.setdefault(str(d.endpoint_id), set()).add(d.topic)
    assert by_endpoint == {
        orders["id"]: {"order.created"},
        everything["id"]: {"order.created", "payment.processed"},
    }
    assert opened["id"] not in by_endpoint


def test_a_store_without_endpoints_gets_no_delivery_rows(store):
    event = fire(store, "order.created", {})
    assert webhooks.create_deliveries(event=event) == []
    assert not WebhookDelivery.all_stores.exists()


def test_an_event_fans_out_once_per_endpoint_even_if_handled_again(api, store, receiver):
    create(api, receiver.url, ["*"])
    event = fire(store, "order.created", {})
    assert webhooks.create_deliveries(event=event) == []
    assert WebhookDelivery.all_stores.count() == 1


def test_the_publisher_skips_the_fan_out_unless_an_endpoint_of_the_store_wants_the_topic(
    api, store, other_store, receiver, django_capture_on_commit_callbacks
):
    fan_out = registered_handlers()["alerts.receivers.fan_out_to_webhooks"]
    assert fan_out.when is webhooks.store_wants_event
    assert fan_out.wanted_for(fire(store, "order.created", {})) is False  # no endpoint: no task
    with django_capture_on_commit_callbacks(execute=True):
        create(api, receiver.url, ["order.*"])
    assert fan_out.wanted_for(fire(store, "order.created", {})) is True
    assert fan_out.wanted_for(fire(store, "payment.processed", {})) is False
    assert fan_out.wanted_for(fire(other_store, "order.created", {})) is False


def test_topic_patterns_match_like_fnmatch():
    assert webhooks.topic_matches(["order.*"], "order.created")
    assert not webhooks.topic_matches(["order.*"], "orders.created")
    assert webhooks.topic_matches(["alert.opened", "payment.*"], "payment.failed")
    assert webhooks.topic_matches(["*"], "shipment.delivered")


# ------------------------------------------------------------------------------- delivery


def test_delivery_is_signed_and_carries_the_event(api, store, receiver):
    created = create(api, receiver.url, ["order.*"])
    event = fire(store, "order.created", {"total": "19.90"})
    delivery = WebhookDelivery.all_stores.get()
    assert send(delivery) == "succeeded"
    (request,) = receiver.requests
    assert request.headers["X-OrderFlow-Event"] == "order.created"
    assert request.headers["X-OrderFlow-Delivery"] == str(delivery.pk)
    assert request.headers["Content-Type"] == "application/json"
    assert request.signature_valid(created["secret"])
    assert not request.signature_valid("whsec_someone_else")
    body = request.json
    assert (body["id"], body["topic"], body["store"], body["data"]) == (
        event.pk, "order.created", "store-a", {"total": "19.90"},
    )  # fmt: skip
    assert body == json.loads(json.dumps(Event.all_stores.get(pk=event.pk).as_message()))


def test_2xx_marks_the_delivery_succeeded_with_status_and_duration(api, store, receiver):
    create(api, receiver.url, ["*"])
    receiver.respond_with(204)
    fire(store, "order.created", {})
    delivery = WebhookDelivery.all_stores.get()
    send(delivery)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.http_status, delivery.attempts) == ("succeeded", 204, 1)
    assert delivery.duration_ms is not None and delivery.delivered_at is not None
    assert delivery.next_attempt_at is None


def test_5xx_is_retried_with_the_same_delivery_id_until_it_succeeds(api, store, receiver):
    create(api, receiver.url, ["*"])
    receiver.respond_with(500, 503)
    fire(store, "order.created", {})
    delivery = WebhookDelivery.all_stores.get()
    send(delivery)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.http_status, delivery.attempts) == ("succeeded", 200, 3)
    assert [h["http_status"] for h in delivery.history] == [500, 503, 200]
    assert {r.headers["X-OrderFlow-Delivery"] for r in receiver.requests} == {str(delivery.pk)}


def test_5xx_forever_fails_after_the_bounded_retries(api, store, receiver, settings):
    create(api, receiver.url, ["*"])
    receiver.respond_with(*[500] * 10)
    fire(store, "order.created", {})
    delivery = WebhookDelivery.all_stores.get()
    send(delivery)
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert delivery.attempts == settings.WEBHOOK_MAX_RETRIES + 1 == len(receiver.requests)
    assert delivery.last_error == "receiver answered 500"


def test_4xx_is_not_retried(api, store, receiver):
    create(api, receiver.url, ["*"])
    receiver.respond_with(400)
    fire(store, "order.created", {})
    delivery = WebhookDelivery.all_stores.get()
    send(delivery)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.http_status, delivery.attempts) == ("failed", 400, 1)
    assert len(receiver.requests) == 1


def test_connection_refused_is_retried_then_recorded_as_failed(api, store, receiver):
    from tests.conftest import free_port

    create(api, f"http://127.0.0.1:{free_port()}/nobody-home", ["*"])
    fire(store, "order.created", {})
    delivery = WebhookDelivery.all_stores.get()
    send(delivery)
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.http_status is None
    assert delivery.attempts > 1 and delivery.last_error == "connection refused"


def test_attempt_reports_retry_and_records_the_next_attempt_time(api, store, receiver):
    create(api, receiver.url, ["*"])
    receiver.respond_with(502)
    fire(store, "order.created", {})
    delivery = WebhookDelivery.all_stores.get()
    outcome = webhooks.attempt_delivery(
        delivery_id=str(delivery.pk), store_id=store.pk, can_retry=True, retry_in=30
    )
    delivery.refresh_from_db()
    assert outcome == "retry"
    assert (delivery.status, delivery.http_status, delivery.attempts) == ("pending", 502, 1)
    assert delivery.next_attempt_at > delivery.created_at


def test_deliveries_endpoint_lists_the_log_and_redeliver_sends_again_with_the_same_id(api, store, receiver):
    created = create(api, receiver.url, ["*"])
    receiver.respond_with(400)
    fire(store, "order.created", {})
    delivery = WebhookDelivery.all_stores.get()
    send(delivery)
    log = api.get(f"/api/v1/webhooks/{created['id']}/deliveries").json()
    assert log["count"] == 1
    row = log["results"][0]
    assert (row["id"], row["status"], row["http_status"], row["attempts"]) == (
        str(delivery.pk),
        "failed",
        400,
        1,
    )
    assert row["topic"] == "order.created" and "duration_ms" in row
    assert api.get(f"/api/v1/webhooks/{created['id']}/deliveries?status=succeeded").json()["count"] == 0

    r = api.post(f"/api/v1/webhooks/{created['id']}/deliveries/{delivery.pk}/redeliver")
    assert r.status_code == 202 and r.json()["status"] == "pending"
    send(delivery)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.http_status, delivery.attempts) == ("succeeded", 200, 2)
    assert [x.headers["X-OrderFlow-Delivery"] for x in receiver.requests] == [str(delivery.pk)] * 2


def test_a_finished_delivery_is_not_sent_again_by_a_duplicate_task(api, store, receiver):
    create(api, receiver.url, ["*"])
    fire(store, "order.created", {})
    delivery = WebhookDelivery.all_stores.get()
    send(delivery)
    assert send(delivery) == "skipped"
    assert len(receiver.requests) == 1


def test_a_new_endpoint_is_seen_by_the_next_event_despite_the_cache(
    api, store, receiver, django_capture_on_commit_callbacks
):
    fire(store, "order.created", {})  # caches "no endpoints" for this store
    with django_capture_on_commit_callbacks(execute=True):
        create(api, receiver.url, ["*"])
    fire(store, "order.created", {})
    assert WebhookDelivery.all_stores.count() == 1


def test_a_pending_delivery_long_overdue_is_queued_again(api, store, receiver):
    create(api, receiver.url, ["*"])
    fire(store, "order.created", {})
    delivery = WebhookDelivery.all_stores.get()
    assert webhooks.resend_stale_deliveries(overdue_seconds=60) == 0
    WebhookDelivery.all_stores.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(hours=1)
    )
    assert webhooks.resend_stale_deliveries(overdue_seconds=60) == 1
    # on their own queue: a receiver that holds a worker holds a webhooks slot, not the order flow's
    assert queued_tasks("alerts.deliver_webhook", queue="webhooks") == [[str(delivery.pk), store.pk]]
    delivery.refresh_from_db()
    assert delivery.next_attempt_at > timezone.now() - timedelta(seconds=60)


def test_deliveries_are_routed_to_the_webhooks_queue_which_every_worker_we_start_consumes():
    """A queue nobody consumes loses every delivery quietly: production (deploy/Procfile) has its
    worker, make run's worker and the bench stack's take every queue of the settings (no `-Q`;
    tests/cluster/test_deploy.py for make run), the tests' worker fixtures name it."""
    import re
    from pathlib import Path

    from celery import current_app
    from django.conf import settings

    root = Path(__file__).resolve().parents[2]
    assert current_app.amqp.router.route({}, "alerts.deliver_webhook")["queue"].name == "webhooks"
    assert "webhooks" in [q.name for q in settings.CELERY_TASK_QUEUES]
    assert re.search(
        r"^worker-webhooks: deploy/run-role worker webhooks$",
        (root / "deploy" / "Procfile").read_text(),
        re.M,
    )
    for path in ("tests/conftest.py", "tests/reliability/conftest.py"):
        text = (root / path).read_text()
        assert re.search(r"default\W+orders\W+payments\W+fulfillment\W+webhooks\b", text), path
    bench_worker = (root / "bench" / "stack.py").read_text()
    assert '"worker", "-l", "WARNING",' in bench_worker and '"-Q"' not in bench_worker
