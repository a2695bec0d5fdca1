"""A one-row conditional UPDATE with its SQL text built once per (model, column set).

`update_row` is what the state machine's compare-and-set transitions use (`orderflow/core/
statemachine.py`) and the order's mirrored statuses (`orders.services.set_*_status`). Every value
goes through the field's own `get_db_prep_save`, so the row is what `QuerySet.update` would write.
Everything else — intake's order, lines and events included — writes through the ORM.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from django.db import connection, models


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
