"""Django's Redis cache backend with one client per process instead of one per use.

Django keeps a cache object per thread/async context, and under ASGI every request runs in a new
context: each request built a new `RedisCacheClient`, so a new connection pool, a TCP connect and
the HELLO/CLIENT SETINFO handshake, and on top `redis.Redis(...)` was constructed for every single
command (copying its ~200 response callbacks). The vault, the throttle, the webhook-topic cache and
the live-push throttle all pay that per request. Here the client and its pool are made once per
process and server list and shared by every context (redis-py's pool is thread-safe and resets
itself after a fork).
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

_lock = threading.Lock()
_clients: dict[Any, SharedRedisCacheClient] = {}


class SharedRedisCacheClient(RedisCacheClient):
    def __init__(self, servers, **options) -> None:
        super().__init__(servers, **options)
        self._redis: dict[int, Any] = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._redis.get(index)
        if client is None:
            client = self._redis[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client


class SharedRedisCache(RedisCache):
    @property
    def _cache(self) -> SharedRedisCacheClient:  # type: ignore[override]
        ident = (tuple(self._servers), repr(sorted(self._options.items())))
        client = _clients.get(ident)
        if client is None:
            with _lock:
                client = _clients.get(ident)
                if client is None:
                    client = _clients[ident] = SharedRedisCacheClient(self._servers, **self._options)
        return client
