"""The OpenAPI schema is exact: what generated clients are built from. Every check iterates the
operations and components the schema has, so endpoints added later are held to the same rules."""

import pytest
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.plumbing import ResolvedComponent, force_instance
from rest_framework import serializers

from fulfillment.models import Fulfillment
from orders.models import Order

TAGS = {"orders", "payments", "inventory", "fulfillment", "alerts", "webhooks", "store", "keys", "dashboard"}
METHODS = ("get", "post", "put", "patch", "delete")

# The operationIds clients are generated with: renaming one breaks their code, so a change here is
# deliberate (update the snapshot when an endpoint is added).
OPERATION_IDS = {
    "api_root",
    "alerts_acknowledge",
    "alerts_list",
    "alerts_resolve",
    "carriers_webhook",
    "dashboard_stats",
    "fulfillments_list",
    "fulfillments_pack",
    "fulfillments_pick",
    "fulfillments_ready",
    "fulfillments_retrieve",
    "fulfillments_ship",
    "inventory_adjust",
    "inventory_list",
    "inventory_movements",
    "inventory_restock",
    "keys_create",
    "keys_list",
    "keys_revoke",
    "legacy_order",
    "orders_approve",
    "orders_cancel",
    "orders_create",
    "orders_events",
    "orders_list",
    "orders_refunds_create",
    "orders_refunds_retrieve",
    "orders_retry",
    "orders_payment",
    "orders_reject",
    "orders_retrieve",
    "orders_tracking",
    "products_create",
    "products_list",
    "products_partial_update",
    "products_retrieve",
    "store_partial_update",
    "store_retrieve",
    "track_api",
    "webhooks_create",
    "webhooks_deliveries",
    "webhooks_destroy",
    "webhooks_list",
    "webhooks_partial_update",
    "webhooks_redeliver",
    "webhooks_retrieve",
}


@pytest.fixture(scope="module")
def generated():
    generator = SchemaGenerator()
    return generator, generator.get_schema(request=None, public=True)


@pytest.fixture(scope="module")
def schema(generated):
    return generated[1]


def operations(schema):
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method.upper(), item[method]


def _enum_ref(prop: dict) -> str | None:
    """The enum component a property points at: directly, via allOf (readOnly) or oneOf (nullable)."""
    for candidate in [prop, *prop.get("allOf", []), *prop.get("oneOf", [])]:
        ref = candidate.get("$ref", "")
        name = ref.rsplit("/", 1)[-1]
        if name and name not in ("BlankEnum", "NullEnum"):
            return name
    return None


def test_the_schema_validates_without_a_warning(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def test_every_enum_component_holds_exactly_the_choices_of_every_field_that_uses_it(generated):
    generator, schema = generated
    components = schema["components"]["schemas"]
    users: dict[str, list[str]] = {}
    for (name, kind), component in generator.registry._components.items():
        if kind != ResolvedComponent.SCHEMA or not isinstance(
            component.object, serializers.BaseSerializer | type
        ):
            continue
        try:
            serializer = force_instance(component.object)
            fields = serializer.fields
        except Exception:  # not a serializer component (an extension's own object)
            continue
        properties = components.get(name, {}).get("properties", {})
        for field_name, field in fields.items():
            if not isinstance(field, serializers.ChoiceField) or field_name not in properties:
                continue
            enum_name = _enum_ref(properties[field_name])
            if enum_name is None:
                continue
            expected = {str(v) for v in field.choices if v not in ("", None)}
            actual = {str(v) for v in components[enum_name]["enum"] if v not in ("", None)}
            assert actual == expected, f"{name}.{field_name} uses {enum_name}: {actual} != {expected}"
            users.setdefault(enum_name, []).append(f"{name}.{field_name}")
    assert users, "no enum was checked"


def test_the_order_and_the_fulfillment_have_their_own_status_enums(schema):
    components = schema["components"]["schemas"]
    order_enum = _enum_ref(components["OrderOut"]["properties"]["fulfillment_status"])
    fulfillment_enum = _enum_ref(components["Fulfillment"]["properties"]["status"])
    assert order_enum != fulfillment_enum
    assert set(components[order_enum]["enum"]) == set(Order.FulfillmentStatus.values)
    assert set(components[fulfillment_enum]["enum"]) == set(Fulfillment.Status.values)


def test_operation_ids_are_unique_and_stable(schema):
    ids = [op["operationId"] for _, _, op in operations(schema)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert set(ids) == OPERATION_IDS


def test_every_operation_is_tagged_by_its_resource(schema):
    for path, method, op in operations(schema):
        assert len(op.get("tags", [])) == 1 and op["tags"][0] in TAGS, (method, path, op.get("tags"))
    assert {t["name"] for t in schema["tags"]} == TAGS


def test_request_bodies_are_json_only_except_the_legacy_intake(schema):
    for path, method, op in operations(schema):
        if "requestBody" not in op:
            continue
        media = set(op["requestBody"]["content"])
        if path == "/api/v1/legacy/orders":
            assert media == {"application/json", "application/x-www-form-urlencoded"}
        else:
            assert media == {"application/json"}, (method, path, media)


def test_every_error_answer_is_documented_with_the_error_schema(schema):
    error = {"$ref": "#/components/schemas/Error"}
    assert schema["components"]["schemas"]["Error"]["required"] == ["error"]
    for path, method, op in operations(schema):
        responses = op["responses"]
        codes = {int(c) for c in responses}
        for code in codes:
            if code >= 400:
                assert responses[str(code)]["content"] == {"application/json": {"schema": error}}, (
                    method,
                    path,
                    code,
                )
        if op.get("security"):
            assert {400, 401, 403, 404, 429} <= codes, (method, path, codes)
        if "requestBody" in op:
            assert {400, 413, 415} <= codes, (method, path, codes)
        if "{" in path:
            assert 404 in codes, (method, path, codes)
        if method == "GET" and any(p["name"] in ("page", "cursor") for p in op.get("parameters", [])):
            assert {400, 404} <= codes, (method, path, codes)  # a page or cursor that does not exist


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["page=9999", "page=0", "page=x", "cursor=not-a-cursor", "page_size=-1"])
def test_an_out_of_range_page_or_cursor_is_a_documented_answer(api, schema, query):
    """Whatever the paginator answers for a page that does not exist, the schema says it."""
    r = api.get(f"/api/v1/orders?{query}")
    documented = schema["paths"]["/api/v1/orders"]["get"]["responses"]
    assert str(r.status_code) in documented, (query, r.status_code)
    if r.status_code >= 400:
        assert set(r.json()["error"]) >= {"code", "message"}


def test_a_view_adds_the_statuses_only_it_knows_with_error_statuses(schema):
    """The carrier webhook is public (no credential), but refuses a bad signature with 401."""
    webhook = schema["paths"]["/api/v1/carriers/{carrier}/webhook"]["post"]
    assert not webhook.get("security")
    assert {"400", "401", "404", "413", "415", "429"} <= set(webhook["responses"])
    assert "403" not in webhook["responses"]
