"""Every /api/v1 write declares its permission, and one that declares none is refused (fail closed)."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from fulfillment.api import CarrierWebhookView
from orderflow.core.api import ApiRootView
from orderflow.core.permissions import (
    KEY_SCOPE_PERMS,
    ROLE_PERMS,
    HasStorePermission,
    Perm,
    handles,
    required_perm,
)
from orderflow.core.tenancy import ApiKeyPrincipal, create_api_key
from orders.api import PublicTrackingView

WRITES = ("POST", "PUT", "PATCH", "DELETE")
# no store, no credential: AllowAny on purpose (the API root lists addresses, no data)
PUBLIC = {PublicTrackingView, CarrierWebhookView, ApiRootView}


def api_views() -> list[tuple[str, type]]:
    """(route, view class) of every URL pattern under /api/v1/."""
    found = []

    def walk(patterns, prefix):
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                walk(p.url_patterns, route)
            elif isinstance(p, URLPattern) and route.startswith("api/v1/"):
                found.append((route, p.callback.cls))

    walk(get_resolver().url_patterns, "")
    return found


VIEWS = api_views()


def test_the_walk_finds_the_api():
    routes = {route for route, _ in VIEWS}
    assert {"api/v1/orders", "api/v1/store", "api/v1/keys", "api/v1/webhooks/<uuid:endpoint_id>"} <= routes
    assert len(VIEWS) >= 30


@pytest.mark.parametrize("route, view", VIEWS, ids=[r for r, _ in VIEWS])
def test_every_write_method_declares_a_permission(route, view):
    if view in PUBLIC:
        assert view.permission_classes == [AllowAny]
        return
    permissions = view().get_permissions()
    assert any(isinstance(p, HasStorePermission) for p in permissions), f"{route}: store permission replaced"
    for method in WRITES:
        if handles(view, method):
            assert isinstance(required_perm(view, method), Perm), f"{method} {route} declares no permission"
    for method in ("GET", "HEAD", "OPTIONS"):
        assert isinstance(required_perm(view, method), Perm)


class Undeclared(APIView):
    """A write nobody declared a permission for."""

    ran = False

    def post(self, request):
        Undeclared.ran = True
        return Response({"ok": True})


@pytest.mark.django_db
def test_a_write_with_no_declared_permission_is_refused_even_to_a_full_key(store):
    key, _ = create_api_key(store=store, scope="full")
    request = APIRequestFactory().post("/api/v1/undeclared", {}, format="json")
    request.store, request.user, request._dont_enforce_csrf_checks = store, ApiKeyPrincipal(key), True
    response = Undeclared.as_view()(request)
    assert response.status_code == 403
    assert response.data["error"]["code"] == "forbidden"
    assert Undeclared.ran is False


def test_the_policy_reads_as_the_issue_says():
    """Owner: everything; operator: orders, review, fulfillment, stock; viewer: read only; keys
    never manage keys or members; a read-only key only reads."""
    assert ROLE_PERMS["owner"] == frozenset(Perm)
    assert ROLE_PERMS["viewer"] == {Perm.VIEW}
    assert KEY_SCOPE_PERMS["read_only"] == {Perm.VIEW}
    operator = ROLE_PERMS["operator"]
    assert {Perm.MANAGE_ORDERS, Perm.MANAGE_FULFILLMENT, Perm.MANAGE_STOCK} <= operator
    assert not operator & {Perm.MANAGE_WEBHOOKS, Perm.MANAGE_STORE, Perm.MANAGE_KEYS, Perm.MANAGE_MEMBERS}
    assert not KEY_SCOPE_PERMS["full"] & {Perm.MANAGE_KEYS, Perm.MANAGE_MEMBERS}
