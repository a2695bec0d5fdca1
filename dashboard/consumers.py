"""`/ws/dashboard/?store=<slug>`: one socket per open dashboard page, joined to its store's group.

Session auth (AuthMiddlewareStack). Anonymous → closed with 4401; a user who may not open the
store (not a member, not a superuser) or an unknown store → 4403. The handshake is accepted first
so the browser sees the close code (a refused handshake only shows a bare 403).
Messages: `{"type": "event"|"alert"|"stats", ...}` for that store only.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from orderflow.core.tenancy import Store, user_can_open_store

from .push import group_name

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
SESSION_STORE_KEY = "dashboard_store"


@database_sync_to_async
def _store_for(user, slug: str | None):
    store = Store.objects.filter(slug=slug).first() if slug else None
    if store is None:
        return None
    return store if user_can_open_store(user, store) else None


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None

    async def connect(self):
        user = self.scope.get("user")
        await self.accept()
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        slug = (query.get("store") or [None])[0]
        if not slug:
            session = self.scope.get("session")
            slug = session.get(SESSION_STORE_KEY) if session is not None else None
        store = await _store_for(user, slug)
        if store is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group = group_name(store.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.send_json({"type": "hello", "store": store.slug})

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def push(self, message):
        await self.send_json(message["message"])

    async def push_batch(self, message):
        """Several pushes in one channel-layer message (a batch from the outbox dispatcher)."""
        for item in message["messages"]:
            await self.send_json(item)
