"""`manage.py dev_api_key [store] [--key-file PATH]` — for `make run`: the store's `make-run` API key.

With `--key-file` (what `make run` passes: var/dev-api-key) the raw key is kept in that file (mode
0600, like var/secrets.env) and reused while it still works for that store, so the key `make run`
prints stays the same across restarts; a key that was revoked, belongs to another database or store,
or no file yet → a new key, written there. Without it: a new key each time. Either way at most one
live `make-run` key per store, so restarts don't pile up keys."""

import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from orderflow.core.tenancy import ApiKey, Store, create_api_key, find_api_key, revoke_api_key


class Command(BaseCommand):
    help = "Print the store's `make-run` API key as `<slug> <key>` on the last line (reused with --key-file)."

    def add_arguments(self, parser):
        parser.add_argument("store", nargs="?", help="store slug (default: the first store)")
        parser.add_argument("--key-file", help="keep the raw key in this file (0600) and reuse it")

    def handle(self, *args, **opts):
        stores = Store.objects.order_by("id")
        store = stores.filter(slug=opts["store"]).first() if opts["store"] else stores.first()
        if store is None:
            raise CommandError(f"No store '{opts['store'] or ''}'.")
        path = Path(opts["key_file"]) if opts["key_file"] else None
        raw = _stored_key(path, store)
        if raw is None:
            for old in ApiKey.objects.filter(store=store, name="make-run", revoked_at__isnull=True):
                revoke_api_key(key=old)
            _, raw = create_api_key(store=store, name="make-run")
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(f"{store.slug} {raw}\n")
        if path is not None:
            os.chmod(path, 0o600)
        self.stdout.write(f"{store.slug} {raw}")


def _stored_key(path: Path | None, store: Store) -> str | None:
    """The key in the file if it is still a live `make-run` key of this store, else None."""
    if path is None or not path.exists():
        return None
    slug, _, raw = path.read_text().strip().partition(" ")
    key = find_api_key(raw) if slug == store.slug and raw else None
    if key is None or key.store_id != store.pk or key.revoked_at is not None or key.name != "make-run":
        return None
    return raw
