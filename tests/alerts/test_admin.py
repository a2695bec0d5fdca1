"""Admin: actions go through the services; a new endpoint's secret is shown once in a message."""

import pytest
from django.contrib.messages import get_messages

from alerts import services
from alerts.models import Alert, WebhookDelivery, WebhookEndpoint
from tests.alerts.support import fire
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(make_user(superuser=True))
    return client


def test_alert_actions_acknowledge_and_resolve_through_the_services(admin_client, store):
    a = services.raise_alert(store=store, kind="low_stock", subject="sku:A", message="a")
    b = services.raise_alert(store=store, kind="low_stock", subject="sku:B", message="b")
    url = "/admin/alerts/alert/"
    r = admin_client.post(url, {"action": "acknowledge", "_selected_action": [a.pk]})
    assert r.status_code == 302
    r = admin_client.post(url, {"action": "resolve", "_selected_action": [a.pk, b.pk]})
    assert r.status_code == 302
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.acknowledged_at is not None, a.status, b.status) == (True, "resolved", "resolved")
    assert admin_client.get(url + "?status__exact=resolved&kind__exact=low_stock").status_code == 200


def test_creating_an_endpoint_in_the_admin_shows_its_secret_once(admin_client, store):
    r = admin_client.post(
        "/admin/alerts/webhookendpoint/add/",
        {"store": store.pk, "url": "https://hooks.example.com/x", "topics": '["order.*"]', "active": "on"},
    )
    assert r.status_code == 302, r.content[:2000]
    endpoint = WebhookEndpoint.all_stores.get()
    shown = [str(m) for m in get_messages(r.wsgi_request)]
    assert any(endpoint.secret in m for m in shown)
    change = f"/admin/alerts/webhookendpoint/{endpoint.pk}/change/"
    assert endpoint.secret.encode() in admin_client.get(r.url).content  # the page after saving shows it
    for url in (change, "/admin/alerts/webhookendpoint/"):  # and nothing shows it again
        page = admin_client.get(url)
        assert page.status_code == 200 and endpoint.secret.encode() not in page.content


def test_admin_refuses_a_plain_http_url(admin_client, store):
    r = admin_client.post(
        "/admin/alerts/webhookendpoint/add/",
        {"store": store.pk, "url": "http://hooks.example.com/x", "topics": '["*"]', "active": "on"},
    )
    assert r.status_code == 200 and b"https://" in r.content
    assert not WebhookEndpoint.all_stores.exists()


def test_delivery_log_is_read_only_with_a_redeliver_action(admin_client, store, receiver):
    endpoint = WebhookEndpoint.all_stores.create(store=store, url=receiver.url, topics=["*"])
    fire(store, "order.created", {})
    delivery = WebhookDelivery.all_stores.get()
    WebhookDelivery.all_stores.filter(pk=delivery.pk).update(status="failed")
    url = "/admin/alerts/webhookdelivery/"
    assert admin_client.get(url).status_code == 200
    assert admin_client.get(url + "add/").status_code == 403
    r = admin_client.post(url, {"action": "redeliver", "_selected_action": [delivery.pk]})
    assert r.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.endpoint_id == endpoint.pk


def test_alerts_cannot_be_added_by_hand(admin_client):
    assert admin_client.get("/admin/alerts/alert/add/").status_code == 403
    assert Alert.all_stores.count() == 0
