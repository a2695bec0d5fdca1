"""`manage.py create_store <slug> [--name NAME] [--currency EUR]` — idempotent."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.text import slugify

from orderflow.core.tenancy import Store


class Command(BaseCommand):
    help = "Create a store (an existing slug is left as it is and reported)."

    def add_arguments(self, parser):
        parser.add_argument("slug", nargs="?")
        parser.add_argument("--slug", dest="slug_opt")
        parser.add_argument("--name")
        parser.add_argument("--currency", default="EUR")

    def handle(self, *args, **opts):
        slug = opts["slug"] or opts["slug_opt"]
        if not slug:
            raise CommandError("Give the store's slug: create_store <slug>")
        if slugify(slug) != slug:
            raise CommandError(f"'{slug}' is not a valid slug (lower-case letters, digits, hyphens).")
        currency = opts["currency"].upper()
        if len(currency) != 3 or not currency.isalpha():
            raise CommandError("--currency takes a three-letter ISO code, like EUR.")
        store, created = Store.objects.get_or_create(
            slug=slug, defaults={"name": opts["name"] or slug.replace("-", " ").title(), "currency": currency}
        )
        if created:
            self.stdout.write(f"created store {store.slug} ({store.name}, {store.currency})")
        else:
            self.stdout.write(f"store {store.slug} already exists; left as it is")
