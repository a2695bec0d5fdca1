import pytest

from inventory.selectors import ledger_mismatches


@pytest.fixture(autouse=True)
def _ledger_stays_whole(request):
    """After every inventory test that touched the database: levels == ledger sums."""
    yield
    if "db" in request.fixturenames or "transactional_db" in request.fixturenames:
        assert ledger_mismatches() == []


def topics(store, prefix: str = "") -> list[str]:
    from orderflow.core.events import Event

    return list(
        Event.all_stores.filter(store=store, topic__startswith=prefix)
        .order_by("id")
        .values_list("topic", flat=True)
    )


def events(store, topic: str) -> list:
    from orderflow.core.events import Event

    return list(Event.all_stores.filter(store=store, topic=topic).order_by("id"))
