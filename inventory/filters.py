"""The inventory lists' query parameters (django-filter: schema, browsable API, 400 on a bad
value); the rules are the selectors' `filter_*` functions."""

from __future__ import annotations

import django_filters

from orderflow.core.filters import BooleanFilter, CharInFilter, SelectorFilterSet

from . import selectors
from .models import Product, StockLevel, StockMovement


class ProductFilter(SelectorFilterSet):
    narrow = staticmethod(selectors.filter_products)
    renamed = {"sku": "skus"}

    active = BooleanFilter(help_text="Only active (true) or inactive (false) products.")
    search = django_filters.CharFilter(help_text="Substring of SKU or name.")
    sku = CharInFilter(help_text="Exact SKU(s), comma-separated.")

    class Meta:
        model = Product
        fields: list[str] = []


class StockLevelFilter(SelectorFilterSet):
    narrow = staticmethod(selectors.filter_stock_levels)
    renamed = {"sku": "skus"}

    sku = CharInFilter(help_text="Exact SKU(s), comma-separated.")
    low = BooleanFilter(help_text="true: only SKUs at or under their threshold; false: the others.")

    class Meta:
        model = StockLevel
        fields: list[str] = []


class MovementFilter(SelectorFilterSet):
    narrow = staticmethod(selectors.filter_movements)

    kind = django_filters.ChoiceFilter(choices=StockMovement.Kind.choices, help_text="Only this kind.")

    class Meta:
        model = StockMovement
        fields: list[str] = []
