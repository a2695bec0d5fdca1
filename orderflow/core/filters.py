"""Shared pieces for the list filters (django-filter): each app's `filters.py` declares its list's
query parameters — so the schema and the browsable API's filter form show them and a bad value is
a 400 on its name — and hands the parsed values to the app's selector, where the rules live."""

from __future__ import annotations

from typing import Any, ClassVar

import django_filters
from django import forms
from django_filters.widgets import CSVWidget
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field


class StrictBooleanField(forms.Field):
    """`true`/`1` or `false`/`0`; anything else is an error, not silently "no filter"."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if value in ("true", "1", True):
            return True
        if value in ("false", "0", False):
            return False
        raise forms.ValidationError("Use true or false.")


@extend_schema_field(OpenApiTypes.BOOL)
class BooleanFilter(django_filters.Filter):
    field_class = StrictBooleanField


class RepeatableCSVWidget(CSVWidget):
    """`?sku=A,B` and `?sku=A&sku=B` alike."""

    def value_from_datadict(self, data, files, name):
        values = data.getlist(name) if hasattr(data, "getlist") else [data.get(name)]
        items = [item.strip() for value in values if value for item in value.split(",")]
        return [item for item in items if item] or None


class CharInFilter(django_filters.BaseInFilter, django_filters.CharFilter):
    """One value or a comma-separated list (the parameter may also repeat)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", RepeatableCSVWidget)
        super().__init__(*args, **kwargs)


class ChoicesInFilter(django_filters.BaseInFilter, django_filters.ChoiceFilter):
    """One of the choices or a comma-separated list of them."""


class SelectorFilterSet(django_filters.FilterSet):
    """Parses the declared parameters, then calls `narrow(queryset, **given)` — the app selector's
    filter function — with those the request gave (`renamed`: parameter → keyword where they
    differ). No filter logic of its own."""

    narrow: ClassVar[Any] = None
    renamed: ClassVar[dict[str, str]] = {}

    def filter_queryset(self, queryset):
        given = {
            self.renamed.get(name, name): value
            for name, value in self.form.cleaned_data.items()
            if value not in (None, "", [])
        }
        return type(self).narrow(queryset, **given)
