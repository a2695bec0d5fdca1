"""The live schema checked by a tool no one here wrote: schemathesis generates requests for every
operation the schema describes (new ones included, nothing is listed here) and runs its
conformance checks on each answer. Any failure is a bug of the app or of its schema: fix it there,
never by loosening the checks."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import StoreClient
from tests.contract.inprocess import wsgi_app
from tests.factories import make_key, make_product, make_store, order_body

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    ignored_auth,
]


@pytest.fixture
def seeded(db):
    """A store with a full key and a small catalogue, so generated orders can find real SKUs."""
    store = make_store("contract", name="Contract Store")
    for sku in ("SKU-1", "SKU-2"):
        make_product(store, sku, stock=1_000_000)
    raw_key = make_key(store)
    # One order, so the lists (orders, movements) answer with rows for the schema checks to read.
    placed = StoreClient(store, raw_key).post(
        "/api/v1/orders", order_body(("SKU-1", 2)), format="json", HTTP_IDEMPOTENCY_KEY="contract-seed"
    )
    assert placed.status_code == 202, placed.content
    return store, raw_key


# The schema as the running app serves it (loaded at collection: it needs no database). Not
# `schemathesis.pytest.from_fixture`: its lazy loader breaks on pytest 9 (`Function._nodeid`).
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", wsgi_app())


@schema.parametrize()
@pytest.mark.django_db
@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms_to_the_schema(case, seeded):
    store, raw_key = seeded
    headers = {"X-Store-ID": store.slug, "Authorization": f"Bearer {raw_key}"}
    case.call_and_validate(headers=headers, checks=CHECKS)
