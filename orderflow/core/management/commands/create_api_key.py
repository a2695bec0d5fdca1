"""`manage.py create_api_key <store slug> [--name NAME] [--read-only]`: the key alone on the last line."""

from django.core.management.base import BaseCommand, CommandError

from orderflow.core.tenancy import ApiKey, Store, create_api_key


class Command(BaseCommand):
    help = "Create an API key for a store. The key is shown once, on the last line, alone."

    def add_arguments(self, parser):
        parser.add_argument("store")
        parser.add_argument("--name", default="cli")
        parser.add_argument(
            "--read-only", action="store_true", help="a key that can only read (GET) the store's data"
        )

    def handle(self, *args, **opts):
        store = Store.objects.filter(slug=opts["store"]).first()
        if store is None:
            raise CommandError(f"No store '{opts['store']}'. Create it with: manage.py create_store <slug>")
        scope = ApiKey.Scope.READ_ONLY if opts["read_only"] else ApiKey.Scope.FULL
        key, raw = create_api_key(store=store, name=opts["name"], scope=scope)
        self.stdout.write(
            f"API key {key.prefix} ({key.scope}) for store {store.slug} (shown once; stored only as a hash):"
        )
        self.stdout.write(raw)
