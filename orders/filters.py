"""The order list's query parameters, declared with django-filter so the schema and the browsable
API show them. The rules themselves live in `selectors.filter_orders` (the dashboard uses them
too); this declares and parses the parameters and hands them over."""

from __future__ import annotations

import django_filters
from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from orderflow.core.filters import ChoicesInFilter, SelectorFilterSet

from . import selectors
from .models import Order


class WhenField(forms.Field):
    """ISO 8601 as `selectors.parse_when` reads it (a bare date, naive = UTC, any offset)."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return selectors.parse_when(str(value))
        except ValueError as exc:
            raise forms.ValidationError(str(exc))


@extend_schema_field(OpenApiTypes.DATETIME)
class WhenFilter(django_filters.Filter):
    field_class = WhenField


class OrderFilter(SelectorFilterSet):
    narrow = staticmethod(selectors.filter_orders)

    status = ChoicesInFilter(choices=Order.Status.choices, help_text="One status or a comma-separated list.")
    payment_status = ChoicesInFilter(
        choices=Order.PaymentStatus.choices, help_text="One payment status or a comma-separated list."
    )
    fulfillment_status = ChoicesInFilter(
        choices=Order.FulfillmentStatus.choices, help_text="One fulfillment status or a comma-separated list."
    )
    created_after = WhenFilter(help_text="Placed at or after (ISO 8601; naive = UTC).")
    created_before = WhenFilter(help_text="Placed before (ISO 8601; naive = UTC).")
    updated_after = WhenFilter(
        help_text="Changed at or after (ISO 8601): every status, payment or fulfillment change moves "
        "`updated_at`. For incremental sync, keep the newest `updated_at` you have seen and pass it."
    )
    email = django_filters.CharFilter(help_text="The customer's email, exactly (case-insensitive).")
    search = django_filters.CharFilter(help_text="The order number, or part of the customer's email.")

    class Meta:
        model = Order
        fields: list[str] = []
