"""/api/v1 routes of the orders app."""

urlpatterns: list = []
