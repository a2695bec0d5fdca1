"""A typed client generated from the live schema by a standard generator (openapi-python-client),
used as an integrator would: every module of it imports, and it places, reads, lists and cancels an
order with typed answers (models and enum members) and typed errors (the `Error` model)."""

import importlib
import json
import os
import pkgutil
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tests.contract.inprocess import wsgi_app
from tests.factories import make_key, make_product, make_store

PACKAGE = "orderflow_generated_client"


@pytest.fixture(scope="module")
def client_package(tmp_path_factory):
    """Generate the client from the schema the app serves, into a temp dir, and import it."""
    app = wsgi_app()
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://localhost") as http:
        response = http.get("/api/schema/", params={"format": "json"})
    assert response.status_code == 200
    root = tmp_path_factory.mktemp("generated")
    (root / "schema.json").write_text(json.dumps(response.json()))
    bin_dir = str(Path(sys.executable).parent)  # its post-generation hook runs ruff from the venv
    result = subprocess.run(
        [
            os.path.join(bin_dir, "openapi-python-client"),
            "generate",
            "--path",
            str(root / "schema.json"),
            "--meta",
            "none",
            "--output-path",
            str(root / PACKAGE),
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(root))
    try:
        package = importlib.import_module(PACKAGE)
        # Every operation's module imports (a body a generator cannot express breaks exactly this).
        for info in pkgutil.walk_packages(package.__path__, f"{PACKAGE}."):
            importlib.import_module(info.name)
        yield package
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _mod(name: str):
    return importlib.import_module(f"{PACKAGE}.{name}")


@pytest.fixture
def api(client_package, db):
    store = make_store("generated", name="Generated Client Store")
    make_product(store, "MUG-1", price="12.50", stock=50)
    return client_package.AuthenticatedClient(
        base_url="http://localhost",
        token=make_key(store),
        headers={"X-Store-ID": store.slug},
        httpx_args={"transport": httpx.WSGITransport(app=wsgi_app())},
        raise_on_unexpected_status=True,
    )


def _order_body(models):
    return models.OrderCreateRequest(
        customer=models.CustomerInRequest(email="ada@example.com", name="Ada Lovelace"),
        items=[models.ItemInRequest(sku="MUG-1", quantity=2)],
        shipping_address=models.AddressInRequest(
            line1="1 Analytical Row", city="London", postal_code="N1 9GU", country="GB"
        ),
        payment=models.PaymentInRequest(
            card_number="4242424242424242", exp_month=12, exp_year=2099, cvc="123"
        ),
    )


def test_the_generated_client_runs_the_order_path_with_typed_answers_and_errors(api):
    models = _mod("models")
    orders = _mod("api.orders")
    create = importlib.import_module(f"{orders.__name__}.orders_create")
    retrieve = importlib.import_module(f"{orders.__name__}.orders_retrieve")
    listing = importlib.import_module(f"{orders.__name__}.orders_list")
    cancel = importlib.import_module(f"{orders.__name__}.orders_cancel")
    approve = _mod("api.payments.orders_approve")

    placed = create.sync_detailed(client=api, body=_order_body(models), idempotency_key=str(uuid.uuid4()))
    assert placed.status_code == 202
    order = placed.parsed
    assert isinstance(order, models.OrderOut)
    assert order.status is models.OrderStatusEnum.PENDING
    assert order.fulfillment_status is models.OrderFulfillmentStatusEnum.UNFULFILLED
    assert isinstance(order.payment_status, models.OrderPaymentStatusEnum)
    assert isinstance(order.items[0], models.OrderItemOut) and order.items[0].quantity == 2

    read = retrieve.sync(client=api, order_id=str(order.id))
    assert isinstance(read, models.OrderOut) and read.id == order.id and read.total == order.total

    page = listing.sync(client=api)
    assert [o.id for o in page.results] == [order.id]
    assert all(isinstance(o, models.OrderOut) for o in page.results)

    cancelled = cancel.sync(
        client=api, order_id=str(order.id), body=models.CancelInRequest(reason="changed mind")
    )
    assert isinstance(cancelled, models.OrderOut)
    assert cancelled.status is models.OrderStatusEnum.CANCELLED

    missing = retrieve.sync_detailed(client=api, order_id=str(uuid.uuid4()))
    assert missing.status_code == 404
    assert isinstance(missing.parsed, models.Error) and isinstance(missing.parsed.error, models.ErrorDetail)
    assert missing.parsed.error.code == "not_found"

    conflict = approve.sync_detailed(client=api, order_id=order.id)  # a cancelled order cannot be approved
    assert conflict.status_code == 409
    assert isinstance(conflict.parsed, models.Error) and conflict.parsed.error.code == "invalid_transition"


def test_the_generated_client_gets_validation_errors_with_their_fields(api):
    models = _mod("models")
    create = _mod("api.orders.orders_create")
    body = _order_body(models)
    body.items = [models.ItemInRequest(sku="NO-SUCH-SKU", quantity=1)]
    answer = create.sync_detailed(client=api, body=body, idempotency_key=str(uuid.uuid4()))
    assert answer.status_code == 400
    assert isinstance(answer.parsed, models.Error)
    assert answer.parsed.error.code == "validation_error"
    assert "items[0].sku" in answer.parsed.error.fields.to_dict()
