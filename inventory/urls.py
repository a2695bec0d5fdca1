"""/api/v1 routes of the inventory app."""

urlpatterns: list = []
