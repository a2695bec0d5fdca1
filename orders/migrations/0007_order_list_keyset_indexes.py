"""The order lists' keyset index (store, created_at DESC, id DESC) replaces (store, created_at DESC),
which it covers; (store, updated_at) serves `updated_after`."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0004_apikey_scope"),
        ("orders", "0006_partial_refunds"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="order",
            name="order_store_created",
        ),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(fields=["store", "-created_at", "-id"], name="order_store_created_id"),
        ),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(fields=["store", "updated_at"], name="order_store_updated"),
        ),
    ]
