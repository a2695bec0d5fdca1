"""/api/v1 routes of the inventory app (no trailing slashes: the contract's paths have none)."""

from django.urls import path

from . import api

urlpatterns = [
    path("products", api.ProductListView.as_view(), name="product-list"),
    path("products/<str:sku>", api.ProductDetailView.as_view(), name="product-detail"),
    path("inventory", api.InventoryListView.as_view(), name="inventory-list"),
    path("inventory/<str:sku>/restock", api.RestockView.as_view(), name="inventory-restock"),
    path("inventory/<str:sku>/adjust", api.AdjustView.as_view(), name="inventory-adjust"),
    path("inventory/<str:sku>/movements", api.MovementListView.as_view(), name="inventory-movements"),
]
