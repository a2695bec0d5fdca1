"""Public (unauthenticated) pages of payments: the shopper's pay-again form."""

from django.urls import path

from .pages import pay_again_page

urlpatterns = [path("track/<str:token>/pay", pay_again_page, name="pay-again")]
