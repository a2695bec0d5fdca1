"""/api/v1 routes of the alerts app."""

urlpatterns: list = []
