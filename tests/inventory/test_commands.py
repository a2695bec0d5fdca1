"""`manage.py db_init` and `manage.py seed`: idempotent, and they leave a usable install."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from inventory.demo import DEMO_STORES
from inventory.models import Product, StockLevel, StockMovement
from orderflow.core.tenancy import ApiKey, Store, StoreMembership

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def snapshot():
    return (
        Store.objects.count(),
        Product.all_stores.count(),
        StockMovement.all_stores.count(),
        ApiKey.objects.count(),
        get_user_model().objects.count(),
        StoreMembership.objects.count(),
    )


def test_seed_twice_gives_the_same_data_and_prints_each_key_once():
    first = run("seed")
    after_first = snapshot()
    second = run("seed")
    assert snapshot() == after_first
    assert after_first[0] == 2 and after_first[1] >= 60 and after_first[3] == 2
    for demo in DEMO_STORES:
        store = Store.objects.get(slug=demo.slug)
        assert Product.all_stores.filter(store=store).count() >= 30
        assert StoreMembership.objects.filter(store=store, user__username=f"{demo.slug}-operator").exists()
    assert first.count("of_") == 4  # each key in its creation line and in the summary
    assert "of_" not in second and "create_api_key demo-books" in second
    assert "demo-books-operator / orderflow-demo" in first


def test_seed_catalogue_has_sensible_prices_and_some_low_stock():
    run("seed")
    for demo in DEMO_STORES:
        store = Store.objects.get(slug=demo.slug)
        prices = list(Product.all_stores.filter(store=store).values_list("price", flat=True))
        assert all(0 < p < 1000 for p in prices)
        low = [lv for lv in StockLevel.all_stores.filter(store=store) if lv.is_low]
        assert 1 <= len(low) < len(prices) // 2


def test_seed_operator_can_log_in_with_the_printed_password(client):
    run("seed")
    r = client.post(  # the real login form (the login lockout needs the request to judge it)
        "/admin/login/?next=/dashboard/", {"username": "demo-books-operator", "password": "orderflow-demo"}
    )
    assert r.status_code == 302 and r["Location"] == "/dashboard/"
    assert client.get("/dashboard/").status_code == 200


def test_seed_reset_starts_over():
    run("seed")
    Product.all_stores.filter(sku="BK-DDIA").delete()
    out = run("seed", "--reset")
    assert "reset:" in out
    assert Product.all_stores.filter(sku="BK-DDIA").count() == 1
    assert ApiKey.objects.count() == 2


def test_seed_orders_go_through_the_order_service():
    from orders.models import Order

    out = run("seed", "--orders", "2")
    assert Order.all_stores.count() + out.count("refused") >= 2
    assert StockMovement.all_stores.filter(kind="reserve").exists()


def test_db_init_is_idempotent_restores_schedules_and_creates_superuser(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "root")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "s3cret-pw")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "root@example.com")
    PeriodicTask.objects.filter(task="inventory.check_inventory").delete()
    out = run("db_init")
    assert "restored: inventory: low-stock watchdog" in out and "created root" in out
    assert PeriodicTask.objects.get(task="inventory.check_inventory").interval.every == 60
    user = get_user_model().objects.get(username="root")
    assert user.is_superuser and user.check_password("s3cret-pw")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "other")
    out = run("db_init")
    assert "already exists" in out and "restored" not in out
    assert get_user_model().objects.get(username="root").check_password("s3cret-pw")


def test_db_init_keeps_an_edited_schedule():
    task = PeriodicTask.objects.get(task="inventory.check_inventory")
    task.enabled = False
    task.save()
    run("db_init", "--skip-migrate")
    assert PeriodicTask.objects.get(task="inventory.check_inventory").enabled is False


def test_db_init_restores_every_beat_job_of_the_flow():
    tasks = [
        "core.relay_outbox",
        "inventory.check_inventory",
        "orders.purge_idempotency_keys",
        "core.reconcile",
        "alerts.resend_stale_deliveries",
        "payments.probe_gateway",
    ]
    PeriodicTask.objects.filter(task__in=tasks).delete()
    run("db_init", "--skip-migrate")
    assert sorted(PeriodicTask.objects.filter(task__in=tasks).values_list("task", flat=True)) == sorted(tasks)
