"""The app in-process, for tools that speak WSGI (schemathesis, httpx's WSGITransport)."""

from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections


def wsgi_app():
    """Django's WSGI app, minus what Django's own test client also leaves out: closing the
    database connection at the end of each request (it would close the test's transaction)."""
    handler = get_wsgi_application()

    def app(environ, start_response):
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            response = handler(environ, start_response)
            try:  # read and close it here: closing sends request_finished
                return [b"".join(response)]
            finally:
                response.close()
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)

    return app
