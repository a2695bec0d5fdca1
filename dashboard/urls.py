"""/api/v1 routes of the dashboard app."""

from django.urls import path

from .api import StatsView

urlpatterns = [path("dashboard/stats", StatsView.as_view(), name="dashboard-stats")]
