"""Alerts and webhooks API (thin: parse → selector/service → render).

Alert actions are idempotent where repeating cannot mislead: acknowledging an acknowledged alert
or resolving a resolved one answers 200 with the alert unchanged; acknowledging a resolved alert
is refused by the state table (409 `invalid_transition`).
"""

from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.response import Response

from orderflow.core.permissions import Perm
from orderflow.core.tenancy import actor_name

from . import selectors, services, webhooks
from .filters import AlertFilter, WebhookDeliveryFilter
from .models import Alert, WebhookDelivery, WebhookEndpoint

# ---------------------------------------------------------------------------------- alerts


class AlertSerializer(serializers.ModelSerializer):
    class Meta:
        model = Alert
        fields = [
            "id", "kind", "severity", "subject", "message", "status", "count", "order_id", "event_id",
            "data", "first_seen_at", "last_seen_at", "acknowledged_by", "acknowledged_at",
            "resolved_by", "resolved_at",
        ]  # fmt: skip
        read_only_fields = fields


class AlertListView(ListAPIView):
    """`GET /api/v1/alerts` — most recently seen first; filters `status`, `kind`, `severity`."""

    serializer_class = AlertSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = AlertFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Alert.all_stores.none()
        return selectors.alerts(self.request.store)


class _AlertActionView(GenericAPIView):
    serializer_class = AlertSerializer
    service = None
    write_perm = Perm.MANAGE_ALERTS

    def get_queryset(self):
        return selectors.alerts(self.request.store)

    @extend_schema(request=None, responses=AlertSerializer)
    def post(self, request, alert_id: int):
        alert = selectors.get_alert(request.store, alert_id)
        alert = type(self).service(store=request.store, alert=alert, actor=actor_name(request))
        return Response(AlertSerializer(alert).data)


class AlertAcknowledgeView(_AlertActionView):
    """`POST /api/v1/alerts/<id>/acknowledge` — 200; again → 200 no-op; resolved → 409."""

    service = staticmethod(services.acknowledge)


class AlertResolveView(_AlertActionView):
    """`POST /api/v1/alerts/<id>/resolve` — 200; already resolved → 200 no-op."""

    service = staticmethod(services.resolve)


# -------------------------------------------------------------------------------- webhooks


class WebhookEndpointSerializer(serializers.ModelSerializer):
    # Each topic is checked by the service (errors named `topics[i]`); DRF's per-child errors
    # would come out keyed `topics.1`.
    topics = serializers.ListField(child=serializers.CharField(allow_blank=True), allow_empty=False)

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "topics", "active", "description", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {"url": {"validators": []}}


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="The signing secret: shown only in this response."
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    endpoint_id = serializers.UUIDField(read_only=True)
    event_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "endpoint_id", "event_id", "topic", "status", "http_status", "duration_ms", "attempts",
            "last_error", "history", "next_attempt_at", "created_at", "delivered_at",
        ]  # fmt: skip
        read_only_fields = fields


class WebhookListView(ListAPIView):
    """`GET /api/v1/webhooks` (newest first), `POST /api/v1/webhooks` → 201 with the `secret`, once."""

    serializer_class = WebhookEndpointSerializer
    read_perm = write_perm = Perm.MANAGE_WEBHOOKS

    def get_queryset(self):
        return selectors.webhook_endpoints(self.request.store)

    @extend_schema(request=WebhookEndpointSerializer, responses={201: WebhookEndpointCreatedSerializer})
    def post(self, request):
        body = WebhookEndpointSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        endpoint, secret = webhooks.create_endpoint(store=request.store, **body.validated_data)
        data = WebhookEndpointCreatedSerializer(endpoint).data
        data["secret"] = secret
        return Response(data, status=status.HTTP_201_CREATED)


class WebhookDetailView(GenericAPIView):
    """`GET|PATCH|DELETE /api/v1/webhooks/<id>` (the secret is never shown again)."""

    serializer_class = WebhookEndpointSerializer
    read_perm = write_perm = Perm.MANAGE_WEBHOOKS

    def get_queryset(self):
        return selectors.webhook_endpoints(self.request.store)

    def get(self, request, endpoint_id):
        endpoint = selectors.get_webhook_endpoint(request.store, endpoint_id)
        return Response(WebhookEndpointSerializer(endpoint).data)

    def patch(self, request, endpoint_id):
        endpoint = selectors.get_webhook_endpoint(request.store, endpoint_id)
        body = WebhookEndpointSerializer(endpoint, data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        endpoint = webhooks.update_endpoint(store=request.store, endpoint=endpoint, **body.validated_data)
        return Response(WebhookEndpointSerializer(endpoint).data)

    @extend_schema(responses={204: None})
    def delete(self, request, endpoint_id):
        endpoint = selectors.get_webhook_endpoint(request.store, endpoint_id)
        webhooks.delete_endpoint(store=request.store, endpoint=endpoint)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveryListView(ListAPIView):
    """`GET /api/v1/webhooks/<id>/deliveries` — the delivery log, newest first; filter `status`."""

    serializer_class = WebhookDeliverySerializer
    read_perm = Perm.MANAGE_WEBHOOKS
    filter_backends = [DjangoFilterBackend]
    filterset_class = WebhookDeliveryFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request store
            return WebhookDelivery.all_stores.none()
        endpoint = selectors.get_webhook_endpoint(self.request.store, self.kwargs["endpoint_id"])
        return selectors.webhook_deliveries(self.request.store, endpoint=endpoint)


class WebhookRedeliverView(GenericAPIView):
    """`POST /api/v1/webhooks/<id>/deliveries/<delivery id>/redeliver` → 202: queued again, same id."""

    serializer_class = WebhookDeliverySerializer
    write_perm = Perm.MANAGE_WEBHOOKS

    def get_queryset(self):
        return selectors.webhook_deliveries(self.request.store)

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    def post(self, request, endpoint_id, delivery_id):
        endpoint = selectors.get_webhook_endpoint(request.store, endpoint_id)
        delivery = selectors.get_webhook_delivery(request.store, endpoint, delivery_id)
        delivery = webhooks.redeliver(store=request.store, delivery=delivery)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
