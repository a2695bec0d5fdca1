"""WSGI entry, for tools that want one (the project serves ASGI)."""

import os

import django
from django.core.handlers.wsgi import WSGIHandler

from orderflow.observability.tracing import setup_tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orderflow.settings")
django.setup(set_prefix=False)
setup_tracing("web")  # before the handler loads the middleware: the Django instrumentation adds one
application = WSGIHandler()  # what get_wsgi_application() returns, with tracing set up in between
