"""Dashboard pages (session login)."""

urlpatterns: list = []
