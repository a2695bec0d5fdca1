"""SQL aggregates the ORM lacks: the median of a duration, in seconds.

PostgreSQL computes it in the same pass as the counts (`percentile_cont(0.5) WITHIN GROUP`), so
the stats need no per-order loop. Other databases (the embedded SQLite mode) get the median from
an ordered OFFSET query instead: two indexed queries, still no loop.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Aggregate, F, FloatField, Func, QuerySet


class Seconds(Func):
    """`later - earlier` as seconds (float)."""

    output_field = FloatField()

    def __init__(self, later: str, earlier: str, **extra):
        super().__init__(F(later), F(earlier), **extra)

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler, connection, template="EXTRACT(EPOCH FROM (%(expressions)s))", arg_joiner=" - "
        )

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            template="((julianday(%(expressions)s)) * 86400.0)",
            arg_joiner=") - julianday(",
        )


class Median(Aggregate):
    """PostgreSQL's continuous median (an ordered-set aggregate; FILTER works with it)."""

    function = "percentile_cont"
    name = "Median"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()
    allow_distinct = False


def supports_median() -> bool:
    return connection.vendor == "postgresql"


def median_by_offset(qs: QuerySet, expression: Func) -> float | None:
    """Fallback median for databases without percentile_cont: count, then read the middle row(s)."""
    qs = qs.annotate(_v=expression).exclude(_v__isnull=True)
    n = qs.count()
    if not n:
        return None
    ordered = qs.order_by("_v").values_list("_v", flat=True)
    if n % 2:
        return float(ordered[n // 2])
    lo, hi = list(ordered[n // 2 - 1 : n // 2 + 1])
    return (float(lo) + float(hi)) / 2
