"""Public (unauthenticated) pages: the shopper's tracking page."""

urlpatterns: list = []
