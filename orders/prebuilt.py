"""DRF serializers whose field tree is built once per process, for intake's hot path.

A DRF serializer instance deep-copies its declared fields (a ModelSerializer also rebuilds its
fields from the model) every time it is made: for `OrderCreateSerializer` and `OrderOut`, some
forty field objects per request, a third of intake's Python time. The validation and the
rendering themselves read nothing from the instance but its fields and its context, so one
instance per class, made once with an empty context, can validate and render for every request:
the rules, limits and output are still exactly the serializer's declarations — there is no second
copy of them. Only the context is missing: whatever needs the request's context (the store's
currency) is checked by the caller, which falls back to a fresh serializer for the full answer.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers


def _build(field: serializers.Field) -> None:
    """Make every (nested) field now, so no request builds or copies one."""
    if isinstance(field, serializers.ListSerializer):
        _build(field.child)
    elif isinstance(field, serializers.Serializer):
        for child in field.fields.values():
            _build(child)


@cache
def prebuilt(serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
    """The process's one instance of `serializer_class`, context empty, its fields built."""
    instance = serializer_class(context={})
    _build(instance)
    return instance


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any] | None:
    """`serializer_class(data=data).validated_data` without making the serializer, or None when
    the body is not valid (the caller then lets a full serializer word the errors)."""
    try:
        return prebuilt(serializer_class).run_validation(data)
    except (serializers.ValidationError, DjangoValidationError):
        return None


def represented(serializer_class: type[serializers.Serializer], instance: Any) -> dict[str, Any]:
    """`serializer_class(instance).data`, without making the serializer."""
    return prebuilt(serializer_class).to_representation(instance)
