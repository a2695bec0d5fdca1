"""The cache backend keeps one Redis client per process: a new request context (ASGI gives every
request its own) reuses the pool instead of dialling Redis again."""

import threading

import pytest
from django.core.cache import cache, caches


def test_every_context_shares_one_client_and_one_connection_pool():
    cache.set("shared-client-probe", 1, 30)
    pool = cache._cache.get_client().connection_pool
    before = pool._created_connections  # earlier tests in this process share the pool too
    seen = []

    def in_another_thread():
        backend = caches["default"]  # a fresh backend object, as a new request context gets
        for _ in range(5):
            assert backend.get("shared-client-probe") == 1
        seen.append((backend, backend._cache.get_client(), backend._cache.get_client(write=True)))

    threads = [threading.Thread(target=in_another_thread) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    here = cache._cache.get_client()
    assert len({id(b) for b, _, _ in seen}) == 3, "Django still hands each thread its own backend"
    assert {id(c) for _, c, w in seen} | {id(w) for _, c, w in seen} == {id(here)}
    assert here.connection_pool is pool
    assert pool._created_connections - before <= 3, "connections are pooled, not made per use"


@pytest.mark.parametrize("value", [{"a": [1, 2]}, "text", 7])
def test_the_shared_client_still_round_trips_values(value):
    cache.set("shared-client-value", value, 30)
    assert cache.get("shared-client-value") == value
    assert cache.add("shared-client-value", "other", 30) is False
    cache.delete("shared-client-value")
    assert cache.get("shared-client-value") is None
