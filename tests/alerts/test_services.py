"""Alert lifecycle through the services: one open alert per (store, kind, subject)."""

import threading

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from alerts import selectors, services
from alerts.models import Alert
from orderflow.core.errors import InvalidTransition
from orderflow.core.events import Event
from tests.alerts.support import queued_tasks

pytestmark = pytest.mark.django_db


def _raise(store, subject="sku:TSHIRT-M", kind="low_stock", severity="warning", message="Low stock", **kw):
    return services.raise_alert(
        store=store, kind=kind, subject=subject, severity=severity, message=message, **kw
    )


def _topics(store):
    return list(
        Event.all_stores.filter(store=store, topic__startswith="alert.").values_list("topic", flat=True)
    )


def test_raise_opens_an_alert_and_emits_alert_opened_with_its_data(store):
    alert = _raise(store, data={"sku": "TSHIRT-M"}, event_id=41)
    assert (alert.status, alert.count, alert.event_id) == ("open", 1, 41)
    assert alert.first_seen_at == alert.last_seen_at
    event = Event.all_stores.get(store=store, topic="alert.opened")
    assert event.data == {
        "id": alert.pk, "kind": "low_stock", "severity": "warning", "subject": "sku:TSHIRT-M",
        "message": "Low stock", "count": 1, "status": "open",
    }  # fmt: skip
    assert (event.subject_type, event.subject_id) == ("alert", str(alert.pk))


def test_repeat_bumps_count_and_last_seen_instead_of_opening_another(store):
    first = _raise(store, message="Low stock (4 left)", event_id=1)
    again = _raise(store, message="Low stock (2 left)", event_id=2)
    assert again.pk == first.pk
    assert (again.count, again.message, again.event_id) == (2, "Low stock (2 left)", 2)
    assert again.last_seen_at > first.last_seen_at
    assert again.first_seen_at == first.first_seen_at
    assert Alert.all_stores.filter(store=store).count() == 1
    assert _topics(store) == ["alert.opened", "alert.updated"]
    assert Event.all_stores.get(store=store, topic="alert.updated").data["count"] == 2


def test_same_subject_in_another_kind_or_store_is_another_alert(store, other_store):
    a = _raise(store)
    b = _raise(store, kind="out_of_stock")
    c = _raise(other_store)
    assert len({a.pk, b.pk, c.pk}) == 3
    assert {x.count for x in (a, b, c)} == {1}


def test_a_bump_never_lowers_the_severity(store):
    _raise(store, severity="critical")
    assert _raise(store, severity="warning").severity == "critical"
    assert _raise(store, kind="gateway_down", subject="gateway", severity="warning").severity == "warning"
    assert _raise(store, kind="gateway_down", subject="gateway", severity="critical").severity == "critical"


def test_an_acknowledged_alert_is_bumped_and_stays_acknowledged(store):
    alert = _raise(store)
    services.acknowledge(store=store, alert=alert, actor="ops")
    again = _raise(store)
    assert (again.pk, again.status, again.count) == (alert.pk, "acknowledged", 2)


def test_after_resolution_the_same_subject_opens_a_new_alert(store):
    old = _raise(store)
    services.resolve(store=store, alert=old, actor="ops")
    new = _raise(store)
    assert new.pk != old.pk and (new.status, new.count) == ("open", 1)


def test_database_refuses_a_second_unresolved_alert_for_the_same_kind_and_subject(store):
    _raise(store)
    now = timezone.now()
    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.all_stores.create(
            store=store, kind="low_stock", subject="sku:TSHIRT-M", message="dup", status="acknowledged",
            first_seen_at=now, last_seen_at=now,
        )  # fmt: skip


def test_resolve_alerts_resolves_what_is_open_and_is_a_no_op_otherwise(store):
    _raise(store, kind="low_stock")
    _raise(store, kind="out_of_stock")
    resolved = services.resolve_alerts(
        store=store, kind=["low_stock", "out_of_stock"], subject="sku:TSHIRT-M", reason="restocked"
    )
    assert sorted(a.kind for a in resolved) == ["low_stock", "out_of_stock"]
    assert all(a.status == "resolved" and a.resolved_by == "system:alerts" for a in resolved)
    assert services.resolve_alerts(store=store, kind="low_stock", subject="sku:TSHIRT-M") == []
    resolved_events = Event.all_stores.filter(store=store, topic="alert.resolved")
    assert resolved_events.count() == 2
    assert {e.data["status"] for e in resolved_events} == {"resolved"}
    assert {e.data["reason"] for e in resolved_events} == {"restocked"}


def test_acknowledge_records_who_and_when_and_twice_is_a_no_op(store):
    alert = _raise(store)
    acked = services.acknowledge(store=store, alert=alert, actor="ada")
    assert (acked.status, acked.acknowledged_by) == ("acknowledged", "ada")
    assert acked.acknowledged_at is not None
    again = services.acknowledge(store=store, alert=alert, actor="bob")
    assert (again.acknowledged_by, _topics(store).count("alert.acknowledged")) == ("ada", 1)
    event = Event.all_stores.get(store=store, topic="alert.acknowledged")
    assert event.actor == "ada" and event.data["status"] == "acknowledged" and event.data["id"] == alert.pk


def test_resolving_twice_is_a_no_op_and_acknowledging_a_resolved_alert_is_refused(store):
    alert = _raise(store)
    services.resolve(store=store, alert=alert, actor="ada")
    assert services.resolve(store=store, alert=alert, actor="bob").resolved_by == "ada"
    with pytest.raises(InvalidTransition):
        services.acknowledge(store=store, alert=alert, actor="bob")
    assert _topics(store).count("alert.resolved") == 1


def test_open_alert_counts_by_severity_counts_unresolved_only_and_names_every_severity(store, other_store):
    _raise(store, subject="sku:A", severity="critical")
    _raise(store, subject="sku:B")
    _raise(store, subject="sku:C")
    services.acknowledge(store=store, alert=_raise(store, subject="sku:D"), actor="x")
    services.resolve(store=store, alert=_raise(store, subject="sku:E", severity="critical"), actor="x")
    _raise(other_store, subject="sku:A", severity="critical")
    assert selectors.open_alert_counts_by_severity(store) == {"info": 0, "warning": 3, "critical": 1}


def test_selector_filters_and_orders_most_recently_seen_first(store):
    a = _raise(store, subject="sku:A")
    b = _raise(store, subject="sku:B", kind="out_of_stock", severity="critical")
    _raise(store, subject="sku:A")  # bumped: now the most recent
    assert [x.pk for x in selectors.alerts(store)] == [a.pk, b.pk]
    assert [x.pk for x in selectors.alerts(store, severity="critical")] == [b.pk]
    assert [x.pk for x in selectors.alerts(store, kind="low_stock", status="open")] == [a.pk]


def test_critical_alert_email_goes_to_alert_email_to(store, settings, mailoutbox):
    settings.ALERT_EMAIL_TO = ["ops@example.com"]
    from alerts.tasks import send_alert_email

    alert = _raise(store, kind="gateway_down", subject="gateway", severity="critical", message="Gateway down")
    assert send_alert_email.apply(args=[alert.pk, store.pk]).get() == 1
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["ops@example.com"]
    assert "Gateway down" in mailoutbox[0].subject and "store-a" in mailoutbox[0].subject


@pytest.mark.django_db(transaction=True)
def test_two_workers_raising_the_same_alert_at_once_leave_one_alert_counted_twice(store):
    """The second INSERT waits on the first's uncommitted row, hits the partial unique constraint,
    and bumps instead of failing."""
    inserted, second_started = threading.Event(), threading.Event()
    errors = []

    def first():
        try:
            with transaction.atomic():
                _raise(store)
                inserted.set()
                second_started.wait(5)
                threading.Event().wait(0.3)  # let the second INSERT reach the unique index
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    def second():
        try:
            inserted.wait(5)
            second_started.set()
            _raise(store)
        except Exception as exc:  # pragma: no cover
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert errors == []
    alert = Alert.all_stores.get(store=store)
    assert (alert.count, alert.status) == (2, "open")


def test_opening_a_critical_alert_queues_its_email_after_commit_and_a_warning_does_not(
    store, settings, django_capture_on_commit_callbacks
):
    settings.ALERT_EMAIL_TO = ["ops@example.com"]
    with django_capture_on_commit_callbacks(execute=True):
        warning = _raise(store, subject="sku:W")
        critical = _raise(store, kind="gateway_down", subject="gateway", severity="critical")
        _raise(store, kind="gateway_down", subject="gateway", severity="critical")  # a bump: no second mail
    assert queued_tasks("alerts.send_alert_email") == [[critical.pk, store.pk]]
    assert warning.severity == "warning"
