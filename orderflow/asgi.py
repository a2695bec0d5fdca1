"""ASGI entry: plain HTTP to Django, websockets to the dashboard's consumers (session auth)."""

import os

import django
from django.core.handlers.asgi import ASGIHandler

from orderflow.observability.tracing import setup_tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orderflow.settings")
django.setup(set_prefix=False)
setup_tracing("web")  # before the handler loads the middleware: the Django instrumentation adds one
django_asgi_app = ASGIHandler()  # what get_asgi_application() returns, with tracing set up in between

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
