"""List pagination: page numbers for the small lists, Stripe-style cursors for the ones that grow.

`CursorPagination` is keyset pagination with Stripe's parameters: `limit`, `starting_after=<id>`
(the items after that object in list order), `ending_before=<id>` (the items before it). The
cursor object's sort key is read once, and the page is a `WHERE (key...) < (...)` range on an
index — no OFFSET and no COUNT(*), so page 10,000 costs what page 1 costs, and rows inserted
while a client walks the list neither shift nor repeat what it sees."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, transaction
from django.db.models import F, QuerySet
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan
from rest_framework.pagination import BasePagination, PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from .errors import ValidationFailed


class Pagination(PageNumberPagination):
    """`?page=` and `?page_size=` (max 500)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class CursorPagination(BasePagination):
    """Stripe's list semantics over a keyset. The view names its sort key as `cursor_ordering`
    (every field in one direction, the last one unique, an index serving it) and may give
    `get_cursor_queryset()`, the set a cursor id must belong to — wider than the filtered list, so
    an order that left a `status=` filter mid-walk is still a valid place to continue from.

    The answer is `{results, has_more, next, previous}`: `has_more` says whether more items lie
    beyond this page in the direction walked; `next` / `previous` are ready-made URLs."""

    default_limit = 50
    max_limit = 500
    ordering: tuple[str, ...] = ("-created_at", "-id")
    params = ("starting_after", "ending_before")

    def paginate_queryset(self, queryset: QuerySet, request, view=None) -> list[Any]:
        query = request.query_params
        if "page" in query:
            raise ValidationFailed(
                fields={"page": ["This list is paged by cursor: follow `next`, or pass `starting_after`."]}
            )
        self.request = request
        self.limit = self._limit(query)
        fields = tuple(getattr(view, "cursor_ordering", self.ordering))
        descending = fields[0].startswith("-")
        names = tuple(f.lstrip("-") for f in fields)
        after, before = query.get("starting_after"), query.get("ending_before")
        if after is not None and before is not None:
            raise ValidationFailed(
                fields={"ending_before": ["Give starting_after or ending_before, not both."]}
            )
        self.backward = before is not None
        cursor = before if self.backward else after
        qs = queryset
        if cursor is not None:
            scope = view.get_cursor_queryset() if hasattr(view, "get_cursor_queryset") else queryset
            key = self._key_of(scope, names, cursor, "ending_before" if self.backward else "starting_after")
            # Walking forward in a descending list means smaller keys; backward, larger ones.
            smaller = descending != self.backward
            lookup = TupleLessThan if smaller else TupleGreaterThan
            qs = qs.filter(lookup(Tuple(*(F(n) for n in names)), tuple(key)))
        if self.backward:  # the items nearest the cursor, fetched in reverse, then put back in order
            fields = tuple(f[1:] if f.startswith("-") else f"-{f}" for f in fields)
        rows = list(qs.order_by(*fields)[: self.limit + 1])
        self.has_more = len(rows) > self.limit
        rows = rows[: self.limit]
        if self.backward:
            rows.reverse()
        self.cursor_given = cursor is not None
        self.first = rows[0].pk if rows else None
        self.last = rows[-1].pk if rows else None
        return rows

    def _limit(self, query) -> int:
        raw = query.get("limit", query.get("page_size"))  # page_size: the name lists used before
        if raw is None:
            return self.default_limit
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if not 1 <= value <= self.max_limit:
            name = "limit" if "limit" in query else "page_size"
            raise ValidationFailed(fields={name: [f"A whole number from 1 to {self.max_limit}."]})
        return value

    @staticmethod
    def _key_of(scope: QuerySet, names: tuple[str, ...], cursor: str, param: str) -> tuple:
        row = None
        try:
            pk = scope.model._meta.pk.to_python(cursor)
        except (DjangoValidationError, ValueError, TypeError):  # malformed: as unknown as a missing one
            pk = None
        if pk is not None:
            try:
                with transaction.atomic():  # an id out of the column's range must not spoil the request's
                    row = scope.filter(pk=pk).values_list(*names).first()
            except DataError:
                row = None
        if row is None:
            raise ValidationFailed(
                f"`{param}` names no object in this list.",
                fields={param: ["No object with that id in this list (for this store)."]},
            )
        return row

    def _url(self, param: str, value: Any) -> str:
        url = self.request.build_absolute_uri()
        for name in (*self.params, "page"):
            url = remove_query_param(url, name)
        return replace_query_param(url, param, str(value))

    def get_paginated_response(self, data) -> Response:
        # Walking forward: more after this page is `has_more`; something before it exists if we
        # started after a cursor. Walking backward, the other way round.
        more_after = self.cursor_given if self.backward else self.has_more
        more_before = self.has_more if self.backward else self.cursor_given
        return Response(
            {
                "results": data,
                "has_more": self.has_more,
                "next": self._url("starting_after", self.last) if more_after and self.last else None,
                "previous": self._url("ending_before", self.first) if more_before and self.first else None,
            }
        )

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "required": ["results", "has_more", "next", "previous"],
            "properties": {
                "results": schema,
                "has_more": {
                    "type": "boolean",
                    "description": "More items lie beyond this page in the direction walked.",
                },
                "next": {
                    "type": "string",
                    "format": "uri",
                    "nullable": True,
                    "description": "This list with `starting_after` = the last item of this page.",
                },
                "previous": {
                    "type": "string",
                    "format": "uri",
                    "nullable": True,
                    "description": "This list with `ending_before` = the first item of this page.",
                },
            },
        }

    def get_schema_operation_parameters(self, view) -> list[dict]:
        def param(name: str, description: str, schema: dict) -> dict:
            return {
                "name": name,
                "required": False,
                "in": "query",
                "description": description,
                "schema": schema,
            }

        return [
            param(
                "limit",
                f"Items per page, 1–{self.max_limit} (default {self.default_limit}); "
                "`page_size` is accepted too.",
                {"type": "integer", "minimum": 1, "maximum": self.max_limit},
            ),
            param(
                "starting_after",
                "An id from this list: the page of items that follow it in list order. Unknown, "
                "malformed or another store's id → 400 `validation_error`.",
                {"type": "string"},
            ),
            param(
                "ending_before",
                "An id from this list: the page of items that precede it in list order (poll "
                "with the newest id you hold to get what is new).",
                {"type": "string"},
            ),
        ]
