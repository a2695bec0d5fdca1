"""Admin: alerts (acknowledge/resolve through the services), webhook endpoints (the secret is
shown once, in the success message after creation) and the read-only delivery log."""

from django import forms
from django.contrib import admin, messages

from orderflow.core.admin_scoping import StoreScopedAdmin
from orderflow.core.errors import DomainError
from orderflow.core.permissions import Perm
from orderflow.core.tenancy import actor_name

from . import services, webhooks
from .models import Alert, WebhookDelivery, WebhookEndpoint


@admin.register(Alert)
class AlertAdmin(StoreScopedAdmin):
    list_display = [
        "id",
        "store",
        "severity",
        "kind",
        "subject",
        "message",
        "status",
        "count",
        "last_seen_at",
    ]
    list_filter = ["status", "kind", "severity", "store"]
    search_fields = ["subject", "message"]
    date_hierarchy = "last_seen_at"
    readonly_fields = [f.name for f in Alert._meta.fields]
    actions = ["acknowledge", "resolve"]

    def has_add_permission(self, request):
        return False  # alerts come from events only

    def has_change_permission(self, request, obj=None):
        return False

    def _apply(self, request, queryset, service, verb: str) -> None:
        done, refused = 0, 0
        for alert in queryset.select_related("store"):
            try:
                service(store=alert.store, alert=alert, actor=actor_name(request))
                done += 1
            except DomainError:
                refused += 1
        self.message_user(request, f"{verb} {done} alert(s).")
        if refused:
            self.message_user(request, f"{refused} alert(s) could not be {verb.lower()}.", messages.WARNING)

    @admin.action(description="Acknowledge selected alerts", permissions=["manage_alerts"])
    def acknowledge(self, request, queryset):
        self._apply(request, queryset, services.acknowledge, "Acknowledged")

    @admin.action(description="Resolve selected alerts", permissions=["manage_alerts"])
    def resolve(self, request, queryset):
        self._apply(request, queryset, services.resolve, "Resolved")


class WebhookEndpointForm(forms.ModelForm):
    """The services' URL and topic rules, shown as form errors."""

    url = forms.URLField(max_length=500, assume_scheme="https")

    class Meta:
        model = WebhookEndpoint
        fields = ["store", "url", "topics", "active", "description"]

    def _check(self, name, validate):
        try:
            return validate(self.cleaned_data.get(name))
        except DomainError as exc:
            raise forms.ValidationError(
                [m for msgs in (exc.fields or {}).values() for m in msgs] or exc.message
            )

    def clean_url(self):
        return self._check("url", webhooks.validate_url)

    def clean_topics(self):
        return self._check("topics", webhooks.validate_topics)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(StoreScopedAdmin):
    form = WebhookEndpointForm
    manage_perm = Perm.MANAGE_WEBHOOKS
    list_display = ["url", "store", "topics", "active", "created_at"]
    list_filter = ["active", "store"]
    search_fields = ["url", "description"]
    fields = ["store", "url", "topics", "active", "description", "created_at", "updated_at"]
    readonly_fields = ["created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        """Through the services, so the URL/topic rules and the cache invalidation apply."""
        if change:
            webhooks.update_endpoint(
                store=obj.store, endpoint=obj, url=obj.url, topics=obj.topics, active=obj.active,
                description=obj.description,
            )  # fmt: skip
            return
        endpoint, secret = webhooks.create_endpoint(
            store=obj.store, url=obj.url, topics=obj.topics, active=obj.active, description=obj.description
        )
        obj.pk, obj.secret, obj.created_at = endpoint.pk, endpoint.secret, endpoint.created_at
        self.message_user(
            request,
            f"Webhook signing secret for {endpoint.url} — copy it now, it is not shown again: {secret}",
            messages.WARNING,
        )

    def delete_model(self, request, obj):
        webhooks.delete_endpoint(store=obj.store, endpoint=obj)

    def delete_queryset(self, request, queryset):
        """The bulk delete action too goes through the service (its cache invalidation)."""
        for endpoint in queryset.select_related("store"):
            self.delete_model(request, endpoint)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(StoreScopedAdmin):
    list_display = ["id", "store", "topic", "endpoint", "status", "http_status", "attempts", "duration_ms",
                    "created_at", "delivered_at"]  # fmt: skip
    list_filter = ["status", "store"]
    search_fields = ["topic", "id", "endpoint__url"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    actions = ["redeliver"]
    manage_perm = Perm.MANAGE_WEBHOOKS  # no add, no change: deleting the log (and with its endpoint)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Redeliver selected deliveries", permissions=["manage_webhooks"])
    def redeliver(self, request, queryset):
        n = 0
        for delivery in queryset.select_related("store"):
            webhooks.redeliver(store=delivery.store, delivery=delivery)
            n += 1
        self.message_user(request, f"Queued {n} delivery(ies) again.")
