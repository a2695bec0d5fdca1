import pytest

from payments import breaker


@pytest.fixture(autouse=True)
def _closed_breaker():
    """Every test starts with the gateway breaker closed (its state is shared through Redis)."""
    breaker.reset()
    yield
    breaker.reset()


@pytest.fixture
def gw(gateway, settings):
    """The real mock gateway, and this process's gateway client pointed at it."""
    settings.GATEWAY_URL = gateway.url
    return gateway
