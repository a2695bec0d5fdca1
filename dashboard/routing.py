"""Websocket routes (the live dashboard)."""

websocket_urlpatterns: list = []
