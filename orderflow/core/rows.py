"""Plain multi-row INSERTs for the hot paths (order intake, events).

`Model.save()` and `bulk_create()` rebuild a query, a compiler and the SQL text for every call —
about a third of a millisecond of Python each, several times per order. `insert()` builds a
model's INSERT text once per (model, row count) and reuses it; every value still goes through the
field's own `pre_save` (auto_now_add, defaults already on the instance) and `get_db_prep_save`
(JSON, decimals, datetimes), so the stored row is the one `save()` would store. Auto primary keys
come back with RETURNING and are set on the instances, as `bulk_create` does.

For models with no save() override and no pre/post_save receivers only (the intake's and the
events' models are such); anything else should keep using the ORM.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from django.db import connection, models


@lru_cache(maxsize=512)  # (model, row count) pairs: a few hundred at most
def _plan(model: type[models.Model], rows: int, vendor: str) -> tuple[str, tuple[models.Field, ...], bool]:
    meta = model._meta
    qn = connection.ops.quote_name
    pk = meta.pk
    auto_pk = isinstance(pk, models.AutoField | models.BigAutoField | models.SmallAutoField)
    fields = tuple(f for f in meta.concrete_fields if not (auto_pk and f is pk) and not f.generated)
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = (
        f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
        f"VALUES {', '.join([placeholders] * rows)}"
    )
    if auto_pk:
        sql += f" RETURNING {qn(pk.column)}"
    return sql, fields, auto_pk


def insert(objs: Sequence[models.Model]) -> None:
    """INSERT `objs` (instances of one model, not yet saved) in one statement."""
    if not objs:
        return
    model = type(objs[0])
    sql, fields, auto_pk = _plan(model, len(objs), connection.vendor)
    params = []
    for obj in objs:
        for field in fields:
            params.append(field.get_db_prep_save(field.pre_save(obj, True), connection))
    with connection.cursor() as cur:
        cur.execute(sql, params)
        if auto_pk:
            pks = [row[0] for row in cur.fetchall()]
            for obj, pk in zip(objs, pks, strict=True):
                obj.pk = pk
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
