"""The reconciler: one beat task (`core.reconcile`, every minute) runs every app's own sweep.

Each app repairs its own stuck states through its own selectors and services, and asks the apps
to its left only through their public selectors/services; an app registers its sweep with
`@reconciler("app", order=N)` in its `reconciler` module (imported by its AppConfig.ready, like
its receivers). `run_all` runs the registered sweeps by `order` (left to right along the flow:
inventory/orders first, then payments, then fulfillment), each isolated: one sweep's exception is
logged and counted (`errors`, `failed_<app>`) and the next sweep still runs.

The backlog rule: while the queues of the fraud check and the charge (RECONCILE_BACKLOG_QUEUES)
hold more than RECONCILE_BACKLOG_LIMIT messages, `Sweep.behind` is true and the sweeps skip their
re-drives (a backlog is not a lost message: re-driving it would add duplicates, and an alert per
order, to a queue already behind); repairs that enqueue nothing (expiry, stock) still run.

Every repair is an `order.reconciled` event {problem, action, ...details} (`record`), which the
alerts and the timeline read; docs/design.md lists the problems and actions.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import broker
from .tenancy import Store

log = logging.getLogger("orderflow.reconciler")

ACTOR = "reconciler"


@dataclass
class Sweep:
    """What one run of the reconciler hands every app's sweep."""

    now: datetime
    cutoff: datetime  # older than this and not moved: stuck (RECONCILE_STUCK_AFTER_SECONDS)
    batch: int  # at most this many repairs per kind (and store)
    behind: bool  # the queues are deep: no re-drives this time
    counts: Counter = field(default_factory=Counter)

    def count(self, kind: str, n: int = 1) -> None:
        """Count what was done; nothing is recorded for zero (results list only what happened)."""
        if n:
            self.counts[kind] += n

    def each_store(self, *steps: Callable[[Store, Sweep], None]) -> None:
        """Run `step(store, sweep)` for every store, each (store, step) isolated: one store's
        trouble is logged and counted and does not stop the sweep for the others."""
        for store in Store.objects.order_by("pk").iterator():
            for step in steps:
                try:
                    step(store, self)
                except Exception:
                    log.exception("reconciler step %s failed for store %s", step.__name__, store.pk)
                    self.counts["errors"] += 1


@dataclass(frozen=True)
class Registered:
    app: str
    order: int
    sweep: Callable[[Sweep], None]


_SWEEPS: dict[str, Registered] = {}


def reconciler(app: str, *, order: int) -> Callable[[Callable[[Sweep], None]], Callable[[Sweep], None]]:
    """Register `func(sweep)` as `app`'s sweep (one per app; re-registering replaces it)."""

    def register(func: Callable[[Sweep], None]) -> Callable[[Sweep], None]:
        _SWEEPS[app] = Registered(app, order, func)
        return func

    return register


def unregister(app: str) -> None:
    """Withdraw `app`'s sweep (an app switched off; a test's own sweep)."""
    _SWEEPS.pop(app, None)


def registered() -> list[Registered]:
    """The sweeps, in the order they run."""
    return sorted(_SWEEPS.values(), key=lambda r: (r.order, r.app))


def run_all(
    *,
    now: datetime | None = None,
    stuck_after: float | None = None,
    batch: int | None = None,
    apps: Iterable[str] | None = None,
) -> dict[str, int]:
    """One reconciler run: every registered sweep (or only `apps`), each isolated. Returns what was
    done, by kind (the task's result and log line)."""
    now = now or timezone.now()
    wait = stuck_after if stuck_after is not None else float(settings.RECONCILE_STUCK_AFTER_SECONDS)
    backlog = broker_backlog(*settings.RECONCILE_BACKLOG_QUEUES)
    behind = (
        settings.RECONCILE_BACKLOG_LIMIT > 0
        and backlog is not None
        and backlog > settings.RECONCILE_BACKLOG_LIMIT
    )
    sweep = Sweep(
        now=now, cutoff=now - timedelta(seconds=wait), batch=batch or settings.RECONCILE_BATCH, behind=behind
    )
    if behind:
        # A message that really was lost is re-driven by the first run after the queue caught up.
        log.warning("reconciler: %s messages queued on %s; re-drives wait until they catch up",
                    backlog, ", ".join(settings.RECONCILE_BACKLOG_QUEUES))  # fmt: skip
        sweep.counts["skipped_backlog"] = backlog
    wanted = None if apps is None else set(apps)
    for entry in registered():
        if wanted is not None and entry.app not in wanted:
            continue
        try:
            entry.sweep(sweep)
        except Exception:  # one app's trouble must not stop the others' sweeps
            log.exception("reconciler: the %s sweep failed", entry.app)
            sweep.counts["errors"] += 1
            sweep.counts[f"failed_{entry.app}"] += 1
    return dict(sweep.counts)


# ---------------------------------------------------------------------------------- helpers


def broker_backlog(*queues: str) -> int | None:
    """Messages waiting on these broker queues together (None if the broker cannot say for any).
    A queue nobody has declared yet is refused by a passive declare: it holds nothing."""
    try:
        with current_app.connection_for_read() as conn:
            return sum(broker.waiting(conn, queues).values())
    except Exception:
        return None


def send_after_commit(task_name: str, *args: Any) -> None:
    """Enqueue a re-drive (by task name) once the repair's transaction committed; a dead broker is
    logged, not raised (the next run tries again)."""
    transaction.on_commit(partial(current_app.send_task, task_name, args=list(args)), robust=True)


def age_seconds(since: datetime, now: datetime) -> int:
    return int((now - since).total_seconds())
