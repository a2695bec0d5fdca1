"""Dashboard pages (session login), mounted at /dashboard/."""

from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("events.json", views.events_since, name="events"),
    path("orders/", views.order_list, name="orders"),
    path("orders/<uuid:order_id>/", views.order_detail, name="order"),
    path("orders/<uuid:order_id>/<slug:action>", views.order_action, name="order-action"),
    path("inventory/", views.inventory, name="inventory"),
    path("alerts/", views.alert_list, name="alerts"),
    path("alerts/<int:alert_id>/<slug:action>", views.alert_action, name="alert-action"),
    path("workflow/", views.workflow, name="workflow"),
    path("integrity/", views.integrity, name="integrity"),
    path("settings/", views.store_settings_page, name="settings"),
    path("stores/", views.stores, name="stores"),
    path("stores/<slug:slug>/switches", views.store_switches, name="store-switches"),
]
