"""Who may do what in a store: the one permission policy of the API, the dashboard and the admin.

A principal (a session user, a store API key) holds a set of *permissions* in a store. A user's
come from their `StoreMembership.role`; a key's from its scope; platform staff (superusers) hold
every permission in every store. Every entry point asks `can()` / `require()` here and nowhere
else decides; the tables below are the only place a role's reach is written down.
"""

from __future__ import annotations

import enum
from typing import Any

from rest_framework import exceptions as drf_exceptions
from rest_framework import permissions as drf_permissions

from .errors import Forbidden
from .tenancy import ApiKey, ApiKeyPrincipal, Store, StoreMembership


class Perm(enum.StrEnum):
    """What a principal may do inside one store."""

    VIEW = "view"  # read every page, list and detail of the store
    PLACE_ORDERS = "orders.place"  # a checkout: POST /orders (and the legacy form endpoint)
    MANAGE_ORDERS = "orders.manage"  # cancel, fraud review (approve/reject), payment retries, refunds
    MANAGE_FULFILLMENT = "fulfillment.manage"  # pick, pack, ready, ship, delivered, returned
    MANAGE_STOCK = "inventory.manage"  # products, restock, adjust
    MANAGE_ALERTS = "alerts.manage"  # acknowledge, resolve
    MANAGE_WEBHOOKS = "webhooks.manage"  # endpoints, redeliveries
    MANAGE_STORE = "store.manage"  # the store's settings (fraud limits, autopilot, expiry, ...)
    MANAGE_KEYS = "keys.manage"  # create and revoke the store's API keys
    MANAGE_MEMBERS = "members.manage"  # add, change and remove the store's members


ALL = frozenset(Perm)
_OPERATOR = frozenset(
    {
        Perm.VIEW,
        Perm.PLACE_ORDERS,
        Perm.MANAGE_ORDERS,
        Perm.MANAGE_FULFILLMENT,
        Perm.MANAGE_STOCK,
        Perm.MANAGE_ALERTS,
    }
)

ROLE_PERMS: dict[str, frozenset[Perm]] = {
    StoreMembership.Role.OWNER: ALL,
    StoreMembership.Role.OPERATOR: _OPERATOR,
    StoreMembership.Role.VIEWER: frozenset({Perm.VIEW}),
}

# A key acts for software, not a person: a full key does what the store's integrations need
# (like Stripe's secret key) but never mints keys or changes who the members are — that takes an
# owner signed in. A read-only key reads (like Stripe's restricted read keys).
KEY_SCOPE_PERMS: dict[str, frozenset[Perm]] = {
    ApiKey.Scope.FULL: ALL - {Perm.MANAGE_KEYS, Perm.MANAGE_MEMBERS},
    ApiKey.Scope.READ_ONLY: frozenset({Perm.VIEW}),
}

NONE: frozenset[Perm] = frozenset()


def perms_for_role(role: str | None) -> frozenset[Perm]:
    return ROLE_PERMS.get(role, NONE) if role else NONE


def perms_for_key(key: ApiKey) -> frozenset[Perm]:
    if not key.is_active:
        return NONE
    return KEY_SCOPE_PERMS.get(key.scope, NONE)


def perms_in_store(principal: Any, store: Store | int | None) -> frozenset[Perm]:
    """Every permission `principal` holds in `store` (an empty set for strangers and anonymous)."""
    if principal is None or store is None:
        return NONE
    store_id = store if isinstance(store, int) else store.pk
    if isinstance(principal, ApiKeyPrincipal):
        key = principal.api_key
        return perms_for_key(key) if key.store_id == store_id else NONE
    if not getattr(principal, "is_authenticated", False) or not getattr(principal, "is_active", True):
        return NONE
    if principal.is_superuser:
        return ALL
    memberships = StoreMembership.objects.filter(store_id=store_id, user=principal)
    role = memberships.values_list("role", flat=True).first()
    return perms_for_role(role)


def can(
    principal: Any, store: Store | int | None, perm: Perm, *, held: frozenset[Perm] | None = None
) -> bool:
    """Does `principal` hold `perm` in `store`? `held` skips the lookup when the caller has it."""
    return perm in (held if held is not None else perms_in_store(principal, store))


def require(principal: Any, store: Store | int | None, perm: Perm, *, held: frozenset[Perm] | None = None):
    """`can()` or a 403 `forbidden` that names what was missing."""
    if not can(principal, store, perm, held=held):
        raise Forbidden(f"Your role in this store does not allow this ({perm.value}).")


def stores_with(user: Any, perm: Perm):
    """The stores where a *user* holds `perm` (superusers: all): the admin's and the dashboard's
    row filter."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", True):
        return Store.objects.none()
    if user.is_superuser:
        return Store.objects.all()
    roles = [role for role, perms in ROLE_PERMS.items() if perm in perms]
    return Store.objects.filter(memberships__user=user, memberships__role__in=roles).distinct()


# ----------------------------------------------------------------------------- the API side

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def request_perms(request: Any) -> frozenset[Perm]:
    """The permissions of the request's principal in the request's store, looked up once per
    request (an API key's need no query)."""
    django_request = getattr(request, "_request", request)
    held = getattr(django_request, "store_perms", None)
    if held is None:
        held = perms_in_store(getattr(django_request, "user", None), getattr(django_request, "store", None))
        django_request.store_perms = held
    return held


def required_perm(view: Any, method: str) -> Perm | None:
    """What a view needs for `method`: its `required_perms[method]`, else its `read_perm` (VIEW
    unless declared: webhooks are the owner's even to read) for a read and its `write_perm` for a
    write. None means the view declared nothing for a write."""
    declared = getattr(view, "required_perms", None) or {}
    if method in declared:
        return declared[method]
    if method in SAFE_METHODS:
        return getattr(view, "read_perm", None) or Perm.VIEW
    return getattr(view, "write_perm", None)


def handles(view: Any, method: str) -> bool:
    """Does the view implement `method`? (One it does not is DRF's 405, not a permission.)"""
    name = method.lower()
    return name in getattr(view, "http_method_names", ()) and hasattr(view, name)


class HasStorePermission(drf_permissions.BasePermission):
    """Every /api/v1 view: the store the middleware resolved, and the permission the view declares
    for the method. A write on a view that declares none is refused (fail closed).

    Refusals are DRF's own exceptions (the one handler gives them the contract's codes): the
    browsable API asks this class again to decide which forms to draw and expects those."""

    def has_permission(self, request, view) -> bool:
        store = getattr(request._request, "store", None)
        if store is None:
            raise drf_exceptions.NotAuthenticated()
        # A method the view does not implement needs only a reader's access: DRF answers 405.
        perm = required_perm(view, request.method) if handles(view, request.method) else Perm.VIEW
        if perm is None:
            raise drf_exceptions.PermissionDenied("This action declares no permission, so nobody may use it.")
        try:
            require(request.user, store, perm, held=request_perms(request))
        except Forbidden as exc:
            raise drf_exceptions.PermissionDenied(exc.message) from None
        return True
