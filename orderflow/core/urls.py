from django.urls import path

from . import api

urlpatterns = [
    path("", api.ApiRootView.as_view(), name="api-root"),
    path("store", api.CurrentStoreView.as_view(), name="current-store"),
    path("keys", api.ApiKeyListView.as_view(), name="api-key-list"),
    path("keys/<str:prefix>/revoke", api.ApiKeyRevokeView.as_view(), name="api-key-revoke"),
]
