"""WSGI entry, for tools that want one (the project serves ASGI)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orderflow.settings")
application = get_wsgi_application()
