"""Fixtures of the fulfillment tests; the builders themselves live in helpers.py."""

import pytest

from tests.fulfillment.helpers import make_paid_order


@pytest.fixture
def paid_order(store):
    """A paid order of store A (two lines), as payments leaves it."""
    return make_paid_order(store, ("SKU-A", 2), ("SKU-B", 1))
