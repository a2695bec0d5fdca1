"""`manage.py create_api_key <store slug> [--name NAME]` — prints the key alone on its last line."""

from django.core.management.base import BaseCommand, CommandError

from orderflow.core.tenancy import Store, create_api_key


class Command(BaseCommand):
    help = "Create an API key for a store. The key is shown once, on the last line, alone."

    def add_arguments(self, parser):
        parser.add_argument("store")
        parser.add_argument("--name", default="cli")

    def handle(self, *args, **opts):
        store = Store.objects.filter(slug=opts["store"]).first()
        if store is None:
            raise CommandError(f"No store '{opts['store']}'. Create it with: manage.py create_store <slug>")
        key, raw = create_api_key(store=store, name=opts["name"])
        self.stdout.write(f"API key {key.prefix} for store {store.slug} (shown once; stored only as a hash):")
        self.stdout.write(raw)
