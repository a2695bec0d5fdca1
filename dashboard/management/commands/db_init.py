"""`manage.py db_init` — make a database ready to run, idempotently: migrations applied, the beat
schedules present, and a superuser from DJANGO_SUPERUSER_USERNAME / _PASSWORD / _EMAIL if given.

Safe to run on every start (`make run` does): each step only adds what is missing and never
changes what an operator edited (a schedule's interval, an existing user's password)."""

import os

from django.apps import apps as django_apps
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from orderflow.core.schedules import ensure_periodic_task

# (name, task, every seconds): the schedules the platform cannot run without. Their data
# migrations create them; this puts one back if it was deleted (a disabled one stays disabled).
# Every beat job the flow relies on (the migrations create them; db_init puts back a deleted one).
REQUIRED_SCHEDULES = [
    ("outbox relay", "core.relay_outbox", 2),
    ("inventory: low-stock watchdog", "inventory.check_inventory", 60),
    ("orders: purge idempotency keys", "orders.purge_idempotency_keys", 3600),
    ("reconciler: every app's sweep", "core.reconcile", 60),
    ("webhooks: resend stale deliveries", "alerts.resend_stale_deliveries", 60),
    ("payments: probe the gateway while the breaker is open", "payments.probe_gateway", 5),
]


class Command(BaseCommand):
    help = "Apply migrations, ensure periodic tasks exist, create the superuser from env (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--skip-migrate", action="store_true", help="Only the schedules and the superuser."
        )

    def handle(self, *args, **opts):
        verbosity = opts["verbosity"]
        if not opts["skip_migrate"]:
            call_command("migrate", interactive=False, verbosity=max(0, verbosity - 1))
            self.stdout.write("migrations: applied")
        self.ensure_schedules()
        self.ensure_superuser()

    def ensure_schedules(self) -> None:
        PeriodicTask = django_apps.get_model("django_celery_beat", "PeriodicTask")
        restored = []
        with transaction.atomic():
            for name, task, every in REQUIRED_SCHEDULES:
                if not PeriodicTask.objects.filter(task=task).exists():
                    ensure_periodic_task(django_apps, name=name, task=task, every_seconds=every)
                    restored.append(name)
        total = PeriodicTask.objects.count()
        note = f" (restored: {', '.join(restored)})" if restored else ""
        self.stdout.write(f"periodic tasks: {total} present{note}")

    def ensure_superuser(self) -> None:
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "").strip()
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "")
        email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "").strip() or f"{username}@example.com"
        if not username:
            self.stdout.write("superuser: DJANGO_SUPERUSER_USERNAME not set; skipped")
            return
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"superuser: {username} already exists; left as it is")
            return
        if not password:
            self.stdout.write("superuser: DJANGO_SUPERUSER_PASSWORD not set; skipped")
            return
        User.objects.create_superuser(username=username, email=email, password=password)
        self.stdout.write(f"superuser: created {username}")
