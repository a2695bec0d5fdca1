"""Plain INSERTs and one-row UPDATEs for the hot paths (order intake, events, transitions).

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

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

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


@lru_cache(maxsize=512)
def _update_plan(
    model: type[models.Model], names: tuple[str, ...], where: tuple[str, ...], vendor: str
) -> tuple[str, tuple[models.Field, ...], tuple[models.Field, ...]]:
    meta = model._meta
    qn = connection.ops.quote_name
    sets = tuple(meta.get_field(n) for n in names)
    conds = tuple(meta.get_field(n) for n in where)
    sql = (
        f"UPDATE {qn(meta.db_table)} SET {', '.join(f'{qn(f.column)} = %s' for f in sets)} "
        f"WHERE {' AND '.join(f'{qn(f.column)} = %s' for f in (meta.pk, *conds))}"
    )
    return sql, sets, conds


def _prep(field: models.Field, value: Any) -> Any:
    if hasattr(value, "prepare_database_save"):  # a model instance for a foreign key
        value = value.prepare_database_save(field)
    return field.get_db_prep_save(value, connection)


def update_row(
    model: type[models.Model], pk: Any, values: Mapping[str, Any], *, where: Mapping[str, Any] | None = None
) -> int:
    """`UPDATE ... SET values WHERE pk = pk [AND column = value ...]`; the rows changed (0 or 1).

    Plain values only: an expression (F(), Now()) goes through the ORM's update instead."""
    where = where or {}
    if any(hasattr(v, "resolve_expression") for v in (*values.values(), *where.values())):
        return model._base_manager.filter(pk=pk, **where).update(**values)
    sql, sets, conds = _update_plan(model, tuple(values), tuple(where), connection.vendor)
    params = [_prep(f, values[n]) for f, n in zip(sets, values, strict=True)]
    params.append(_prep(model._meta.pk, pk))
    params += [_prep(f, where[n]) for f, n in zip(conds, where, strict=True)]
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.rowcount
