"""Fixtures of the alerts tests."""

import pytest

from tests.alerts.support import WebhookReceiver


@pytest.fixture
def receiver():
    r = WebhookReceiver().start()
    yield r
    r.stop()
