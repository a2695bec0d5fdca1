"""ASGI entry: plain HTTP to Django, websockets to the dashboard's consumers (session auth)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orderflow.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from dashboard.routing import websocket_urlpatterns  # noqa: E402
from orderflow.core.errors import ASGIBodySizeLimit  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": ASGIBodySizeLimit(django_asgi_app),  # counts the body as it streams in
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
