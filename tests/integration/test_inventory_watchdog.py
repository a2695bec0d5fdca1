"""The watchdog from beat, for real: a `celery beat` process reads the PeriodicTask row the data
migration created, a worker runs `inventory.check_inventory`, the crossing is reported once
however often it runs, and a restock resolves it."""

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

from inventory import services
from orderflow.core.events import Event
from tests.conftest import ROOT, wait_until
from tests.factories import make_product

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def beat(worker_env, tmp_path):
    """A real beat process with the database scheduler (the one `make run` starts)."""
    log = tmp_path / "beat.log"
    with open(log, "wb") as logf:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "orderflow", "beat", "-l", "DEBUG",
             "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
             "--pidfile", str(tmp_path / "beat.pid")],
            cwd=ROOT, env=worker_env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        yield log
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def watchdog_sends(log: Path) -> int:
    return len(re.findall(r"Sending due task .*inventory\.check_inventory", log.read_text(errors="replace")))


def test_beat_runs_the_watchdog_which_reports_a_crossing_once_and_restock_resolves_it(
    celery_worker, store, beat
):
    from alerts.models import Alert

    # The row the migration made (transactional tests flush tables, so db_init puts it back, as it
    # would on a real install), sped up for the test: it stays editable, as in the admin.
    call_command("db_init", "--skip-migrate", stdout=io.StringIO())
    assert PeriodicTask.objects.filter(task="inventory.check_inventory", enabled=True).exists()
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
    PeriodicTask.objects.filter(task="inventory.check_inventory").update(
        interval=every_second, last_run_at=None
    )
    PeriodicTasks.update_changed()

    make_product(store, "TENT-2P", stock=2, threshold=5)  # low from the start, nobody reported it

    wait_until(lambda: watchdog_sends(beat) >= 3, 45, message="three watchdog runs from beat")
    time.sleep(1)  # let the worker finish the last run it was sent
    reached = Event.all_stores.filter(store=store, topic="inventory.threshold_reached")
    assert [e.data["sku"] for e in reached] == ["TENT-2P"]
    alert = wait_until(
        lambda: Alert.all_stores.filter(store=store, kind="low_stock", status="open").first(),
        30,
        message="the low_stock alert",
    )
    assert alert.count == 1

    services.restock(store=store, sku="TENT-2P", quantity=20, actor="ops")
    wait_until(
        lambda: Alert.all_stores.filter(pk=alert.pk, status="resolved").exists(), 30, message="alert resolved"
    )
    runs = watchdog_sends(beat)
    wait_until(lambda: watchdog_sends(beat) >= runs + 2, 30, message="two more watchdog runs")
    time.sleep(1)
    assert reached.count() == 1
    assert Event.all_stores.filter(store=store, topic="inventory.threshold_cleared").count() == 1
