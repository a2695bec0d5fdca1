"""Public (unauthenticated) pages: the shopper's tracking page."""

from django.urls import path

from .pages import tracking_page

urlpatterns = [path("track/<str:token>", tracking_page, name="track-page")]
