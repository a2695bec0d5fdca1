"""`manage.py dev_api_key [store]` — for `make run`: revoke the previous run's key, print a new one.

Keeps at most one live `make-run` key per store, so restarting the stack doesn't pile up keys."""

from django.core.management.base import BaseCommand, CommandError

from orderflow.core.tenancy import ApiKey, Store, create_api_key, revoke_api_key


class Command(BaseCommand):
    help = "Rotate the store's `make-run` API key; print `<slug> <key>` on the last line."

    def add_arguments(self, parser):
        parser.add_argument("store", nargs="?", help="store slug (default: the first store)")

    def handle(self, *args, **opts):
        stores = Store.objects.order_by("id")
        store = stores.filter(slug=opts["store"]).first() if opts["store"] else stores.first()
        if store is None:
            raise CommandError(f"No store '{opts['store'] or ''}'.")
        for old in ApiKey.objects.filter(store=store, name="make-run", revoked_at__isnull=True):
            revoke_api_key(key=old)
        _, raw = create_api_key(store=store, name="make-run")
        self.stdout.write(f"{store.slug} {raw}")
