from django.urls import path

from .api import CurrentStoreView

urlpatterns = [path("store", CurrentStoreView.as_view(), name="current-store")]
