"""/api/v1 routes of the dashboard app."""

urlpatterns: list = []
