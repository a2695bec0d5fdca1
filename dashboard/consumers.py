"""`/ws/dashboard/?store=<slug>`: one socket per open dashboard page, joined to its store's group.

Session auth (AuthMiddlewareStack). Anonymous → closed with 4401; a user who may not view the
store (the permission policy: not a member, not a superuser) or an unknown store → 4403. The
handshake is accepted first so the browser sees the close code (a refused handshake only shows a
bare 403).
Messages: `{"type": "event"|"alert"|"stats", ...}` for that store only.

The right to watch is not decided once: every DASHBOARD_SOCKET_RECHECK_SECONDS the socket checks
again that its session still exists and still names its user, and that the user still may view
the store; if not it leaves the groups and closes (4401 for the session, 4403 for the store). The
periodic check is the guarantee; a removed membership or a logout also tells the user's sockets
at once (receivers.py → the `user.<id>` group), so they usually close immediately.
"""

from __future__ import annotations

import asyncio
import logging
from importlib import import_module
from types import SimpleNamespace
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib import auth

from orderflow.core.permissions import Perm, can
from orderflow.core.tenancy import STORE_SESSION_KEY, Store

from .push import group_name, user_group_name

log = logging.getLogger("orderflow.dashboard.consumers")

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_UNVERIFIED = 1011  # the check itself failed: closed (the page reconnects and is checked anew)
SESSION_STORE_KEY = STORE_SESSION_KEY  # one key, owned by core (the browsable API reads it too)


@database_sync_to_async
def _store_for(user, slug: str | None):
    store = Store.objects.filter(slug=slug).first() if slug else None
    if store is None:
        return None
    return store if can(user, store, Perm.VIEW) else None


@database_sync_to_async
def _refusal(session_key: str | None, user_id: int, store_id: int) -> int | None:
    """Why the socket must close now (its close code), or None while it may stay: the session is
    read afresh from the session store (logged out or expired → gone; a changed password → its
    hash no longer verifies), then the policy is asked again about the store."""
    if not session_key:
        return CLOSE_UNAUTHENTICATED
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = auth.get_user(SimpleNamespace(session=session))
    if not user.is_authenticated or user.pk != user_id:
        return CLOSE_UNAUTHENTICATED
    if not can(user, store_id, Perm.VIEW):
        return CLOSE_FORBIDDEN
    return None


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None
    user_group: str | None = None
    store_id: int | None = None
    user_id: int | None = None
    session_key: str | None = None
    ended = False
    _recheck: asyncio.Task | None = None

    async def connect(self):
        user = self.scope.get("user")
        await self.accept()
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        session = self.scope.get("session")
        query = parse_qs(self.scope.get("query_string", b"").decode())
        slug = (query.get("store") or [None])[0]
        if not slug:
            slug = session.get(SESSION_STORE_KEY) if session is not None else None
        store = await _store_for(user, slug)
        if store is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.store_id, self.user_id = store.pk, user.pk
        self.session_key = session.session_key if session is not None else None
        self.group, self.user_group = group_name(store.pk), user_group_name(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.channel_layer.group_add(self.user_group, self.channel_name)
        await self.send_json({"type": "hello", "store": store.slug})
        self._recheck = asyncio.ensure_future(self._recheck_every(settings.DASHBOARD_SOCKET_RECHECK_SECONDS))

    async def disconnect(self, code):
        self.ended = True
        task, self._recheck = self._recheck, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                # the re-check's own cancellation is expected; this task's must go on up, or a
                # server (or a test's event loop) shutting down waits on it for ever
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
            except Exception:
                log.exception("dashboard socket re-check of user %s failed", self.user_id)
        await self._leave()

    async def _leave(self) -> None:
        for attr in ("group", "user_group"):
            group = getattr(self, attr)
            if group:
                setattr(self, attr, None)
                await self.channel_layer.group_discard(group, self.channel_name)

    async def _end(self, code: int) -> None:
        """Stop the pushes (leave the groups), then close with `code`."""
        if self.ended:
            return
        self.ended = True
        await self._leave()
        await self.close(code=code)

    async def _check(self) -> bool:
        """True while the socket may stay; otherwise it has been ended."""
        if self.ended:
            return False
        try:
            code = await _refusal(self.session_key, self.user_id, self.store_id)
        except Exception:
            log.exception("dashboard socket of user %s could not be re-checked", self.user_id)
            code = CLOSE_UNVERIFIED
        if code is not None:
            await self._end(code)
            return False
        return True

    async def _recheck_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            if not await self._check():
                return

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "ping" and not self.ended:
            await self.send_json({"type": "pong"})

    async def push(self, message):
        if not self.ended:
            await self.send_json(message["message"])

    async def push_batch(self, message):
        """Several pushes in one channel-layer message (a batch from the outbox dispatcher)."""
        for item in message["messages"]:
            if self.ended:
                return
            await self.send_json(item)

    # -------------------------------------------------- the user's group (receivers.py)

    async def membership_removed(self, message):
        """A membership of this user went away: ask the policy again if it was this store's."""
        if message.get("store_id") == self.store_id:
            await self._check()

    async def session_ended(self, message):
        """The user logged out of one session: its sockets close, the user's others stay."""
        if self.session_key and message.get("session_key") == self.session_key:
            await self._end(CLOSE_UNAUTHENTICATED)
