"""The alerts lists' query parameters (django-filter: schema, browsable API, 400 on a bad value);
the rules are the selectors' `filter_*` functions."""

from __future__ import annotations

import django_filters

from orderflow.core.filters import SelectorFilterSet

from . import selectors
from .models import Alert, WebhookDelivery


class AlertFilter(SelectorFilterSet):
    narrow = staticmethod(selectors.filter_alerts)

    status = django_filters.ChoiceFilter(choices=Alert.Status.choices)
    kind = django_filters.ChoiceFilter(choices=Alert.Kind.choices)
    severity = django_filters.ChoiceFilter(choices=Alert.Severity.choices)

    class Meta:
        model = Alert
        fields: list[str] = []


class WebhookDeliveryFilter(SelectorFilterSet):
    narrow = staticmethod(selectors.filter_webhook_deliveries)

    status = django_filters.ChoiceFilter(choices=WebhookDelivery.Status.choices)

    class Meta:
        model = WebhookDelivery
        fields: list[str] = []
