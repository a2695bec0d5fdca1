"""The permission policy itself: what each role and key scope holds, and that nothing crosses stores."""

import pytest
from django.contrib.auth.models import AnonymousUser

from orderflow.core.errors import Forbidden
from orderflow.core.permissions import (
    ALL,
    Perm,
    can,
    perms_in_store,
    require,
    stores_with,
)
from orderflow.core.tenancy import ApiKey, ApiKeyPrincipal, StoreMembership, create_api_key, revoke_api_key
from tests.factories import make_store, make_user

pytestmark = pytest.mark.django_db

WRITES = set(Perm) - {Perm.VIEW}


def _member(store, role):
    user = make_user()
    StoreMembership.objects.create(store=store, user=user, role=role)
    return user


def test_owner_holds_everything_in_their_store_and_nothing_elsewhere(store, other_store):
    owner = _member(store, StoreMembership.Role.OWNER)
    assert perms_in_store(owner, store) == ALL
    assert perms_in_store(owner, other_store) == frozenset()


def test_operator_runs_the_flow_but_not_the_store():
    store = make_store()
    operator = _member(store, StoreMembership.Role.OPERATOR)
    held = perms_in_store(operator, store)
    for perm in (
        Perm.VIEW,
        Perm.PLACE_ORDERS,
        Perm.MANAGE_ORDERS,
        Perm.MANAGE_FULFILLMENT,
        Perm.MANAGE_STOCK,
    ):
        assert perm in held
    for perm in (Perm.MANAGE_WEBHOOKS, Perm.MANAGE_STORE, Perm.MANAGE_KEYS, Perm.MANAGE_MEMBERS):
        assert perm not in held


def test_viewer_only_reads():
    store = make_store()
    viewer = _member(store, StoreMembership.Role.VIEWER)
    assert perms_in_store(viewer, store) == frozenset({Perm.VIEW})
    with pytest.raises(Forbidden):
        require(viewer, store, Perm.MANAGE_ORDERS)


def test_superuser_holds_everything_everywhere(store, other_store):
    admin = make_user(superuser=True)
    assert perms_in_store(admin, store) == ALL and perms_in_store(admin, other_store) == ALL
    assert set(stores_with(admin, Perm.MANAGE_KEYS)) == {store, other_store}


def test_anonymous_and_inactive_users_hold_nothing(store):
    assert perms_in_store(AnonymousUser(), store) == frozenset()
    owner = _member(store, StoreMembership.Role.OWNER)
    owner.is_active = False
    owner.save()
    assert perms_in_store(owner, store) == frozenset()


def test_key_scopes(store, other_store):
    full, _ = create_api_key(store=store, scope=ApiKey.Scope.FULL)
    read_only, _ = create_api_key(store=store, scope=ApiKey.Scope.READ_ONLY)
    assert perms_in_store(ApiKeyPrincipal(read_only), store) == frozenset({Perm.VIEW})
    full_perms = perms_in_store(ApiKeyPrincipal(full), store)
    assert Perm.MANAGE_ORDERS in full_perms and Perm.MANAGE_WEBHOOKS in full_perms
    # keys never mint keys nor change who the members are
    assert Perm.MANAGE_KEYS not in full_perms and Perm.MANAGE_MEMBERS not in full_perms
    # a key holds nothing in another store, nor once revoked
    assert perms_in_store(ApiKeyPrincipal(full), other_store) == frozenset()
    revoke_api_key(key=full)
    assert perms_in_store(ApiKeyPrincipal(full), store) == frozenset()


def test_unknown_scope_is_refused_at_creation(store):
    with pytest.raises(ValueError):
        create_api_key(store=store, scope="admin")


def test_stores_with_lists_only_the_stores_where_the_role_allows(store, other_store):
    user = make_user()
    StoreMembership.objects.create(store=store, user=user, role=StoreMembership.Role.OPERATOR)
    StoreMembership.objects.create(store=other_store, user=user, role=StoreMembership.Role.VIEWER)
    assert set(stores_with(user, Perm.VIEW)) == {store, other_store}
    assert list(stores_with(user, Perm.MANAGE_ORDERS)) == [store]
    assert list(stores_with(user, Perm.MANAGE_KEYS)) == []


def test_can_uses_what_the_caller_already_holds(store):
    viewer = _member(store, StoreMembership.Role.VIEWER)
    assert can(viewer, store, Perm.MANAGE_ORDERS, held=frozenset({Perm.MANAGE_ORDERS}))
    assert not can(viewer, store, Perm.MANAGE_ORDERS)


def test_store_settings_errors_name_the_setting_and_the_item(store):
    from orderflow.core.errors import ValidationFailed
    from orderflow.core.store_settings import validate_store_settings

    with pytest.raises(ValidationFailed) as caught:
        validate_store_settings(
            store, {"fraud_high_risk_countries": ["DE", "xyz"], "fraud_review_threshold": 101}
        )
    fields = caught.value.fields
    assert all(m.startswith("item 2: ") for m in fields["fraud_high_risk_countries"])
    assert fields["fraud_high_risk_countries"]
    assert "fraud_review_threshold" in fields


def test_store_settings_review_threshold_may_not_pass_the_reject_threshold(store):
    from orderflow.core.errors import ValidationFailed
    from orderflow.core.store_settings import validate_store_settings

    with pytest.raises(ValidationFailed) as caught:
        validate_store_settings(store, {"fraud_review_threshold": 90, "fraud_reject_threshold": 80})
    assert list(caught.value.fields) == ["fraud_review_threshold"]
    assert validate_store_settings(store, {"fraud_review_threshold": 70}) == {"fraud_review_threshold": 70}
