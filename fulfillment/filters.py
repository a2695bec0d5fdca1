"""The fulfillments list's query parameters (django-filter: schema, browsable API, 400 on a bad
value); the rule is `selectors.filter_fulfillments`."""

from __future__ import annotations

import django_filters

from orderflow.core.filters import SelectorFilterSet

from . import selectors
from .models import Fulfillment


class FulfillmentFilter(SelectorFilterSet):
    narrow = staticmethod(selectors.filter_fulfillments)

    status = django_filters.ChoiceFilter(choices=Fulfillment.Status.choices)

    class Meta:
        model = Fulfillment
        fields: list[str] = []
