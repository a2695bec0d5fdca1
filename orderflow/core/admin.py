"""Admin for stores, members and API keys. A new key is shown once, in the success message."""

from django.contrib import admin, messages

from .events import Event
from .tenancy import ApiKey, Store, StoreMembership, create_api_key, revoke_api_key


class StoreScopedAdmin(admin.ModelAdmin):
    """Staff operators see the rows of their own stores; superusers see every store."""

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(store__memberships__user=request.user)


class MembershipInline(admin.TabularInline):
    model = StoreMembership
    extra = 0
    autocomplete_fields = ["user"]


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    fields = ["name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]
    can_delete = False


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "currency", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [MembershipInline, ApiKeyInline]


@admin.register(StoreMembership)
class StoreMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "store", "role", "created_at"]
    list_filter = ["role", "store"]
    autocomplete_fields = ["user"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "store", "name", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["store"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]
    fields = ["store", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        key, raw = create_api_key(store=obj.store, name=obj.name)
        obj.pk, obj.prefix, obj.hashed_key = key.pk, key.prefix, key.hashed_key
        self.message_user(
            request,
            f"New API key for {obj.store.slug} — copy it now, it is not shown again: {raw}",
            messages.WARNING,
        )

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        for key in queryset:
            revoke_api_key(key=key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["id", "topic", "store", "order_id", "created_at", "published_at"]
    list_filter = ["topic", "store"]
    search_fields = ["order_id", "subject_id", "topic"]
    readonly_fields = [f.name for f in Event._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
