"""/api/v1 routes of the fulfillment app."""

urlpatterns: list = []
