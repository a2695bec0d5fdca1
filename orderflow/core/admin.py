"""Admin for stores, members, API keys and the event log, scoped by the permission policy
(admin_scoping.py). A new key is shown once, in the success message.

The stores list, users, groups and the beat schedule are platform staff's alone: an owner edits
their store's settings in the dashboard / API, and never sees who else uses the deployment.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model

from .admin_scoping import PlatformOnlyAdmin, StoreScopedAdmin, StoreScopedInline, make_platform_only
from .events import Event
from .permissions import Perm
from .tenancy import ApiKey, Store, StoreMembership, create_api_key, revoke_api_key

__all__ = ["StoreScopedAdmin", "StoreScopedInline"]

make_platform_only(admin.site, ("auth", "django_celery_beat", "axes"))  # lockouts: IPs of every store


class MembershipInline(StoreScopedInline, admin.TabularInline):
    model = StoreMembership
    extra = 0
    autocomplete_fields = ["user"]  # the Store admin is platform staff's only, and so is this lookup
    view_perm = manage_perm = Perm.MANAGE_MEMBERS


class ApiKeyInline(StoreScopedInline, admin.TabularInline):
    """Listed on the store; created and revoked on the key admin (create_api_key, the revoke action)."""

    model = ApiKey
    extra = 0
    fields = ["name", "scope", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    can_delete = False
    view_perm = Perm.MANAGE_KEYS

    def has_add_permission(self, request, obj=None):
        return False  # a key is made by create_api_key (hash and prefix), never by a bare row


@admin.register(Store)
class StoreAdmin(PlatformOnlyAdmin, admin.ModelAdmin):
    list_display = ["slug", "name", "currency", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [MembershipInline, ApiKeyInline]


class MembershipForm(forms.ModelForm):
    """The member is named by exact username, never picked from a list: a store owner must not be
    able to browse every user of the deployment (the user lookup is platform staff's only)."""

    username = forms.CharField(max_length=150, help_text="The exact username of an existing user.")

    class Meta:
        model = StoreMembership
        fields = ["store", "role"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            del self.fields["username"]  # who the membership is for never changes; remove it instead

    def clean_username(self):
        name = self.cleaned_data["username"]
        user = get_user_model()._default_manager.filter(username=name, is_active=True).first()
        if user is None:
            raise forms.ValidationError("No active user has this username.")
        return user

    def clean(self):
        cleaned = super().clean()
        user, store = cleaned.get("username"), cleaned.get("store")
        if user is not None and store is not None:
            if StoreMembership.objects.filter(store=store, user=user).exists():
                self.add_error("username", "This user is already a member of this store.")
            self.instance.user = user
        return cleaned


@admin.register(StoreMembership)
class StoreMembershipAdmin(StoreScopedAdmin):
    """Owners manage the members of their stores; nobody else sees who the members are."""

    form = MembershipForm
    list_display = ["user", "store", "role", "created_at"]
    list_filter = ["role", "store"]
    search_fields = ["user__username"]
    list_select_related = ["user", "store"]
    view_perm = manage_perm = Perm.MANAGE_MEMBERS

    def get_fields(self, request, obj=None):
        return ["user", "store", "role"] if obj else ["username", "store", "role"]

    def get_readonly_fields(self, request, obj=None):
        return ["user", "store"] if obj else []  # a membership changes role; move it by removing it


@admin.register(ApiKey)
class ApiKeyAdmin(StoreScopedAdmin):
    """Owners see, create (choosing the scope) and revoke their stores' keys; nobody else sees them.
    A key's store and scope never change after creation, and a revoked key stays revoked."""

    list_display = ["prefix", "store", "name", "scope", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["scope", "store"]
    list_select_related = ["store"]
    actions = ["revoke"]
    view_perm = manage_perm = Perm.MANAGE_KEYS

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["store", "name", "scope"]
        return ["store", "name", "scope", "prefix", "created_at", "last_used_at", "revoked_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["store", "scope", "prefix", "created_at", "last_used_at", "revoked_at"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        key, raw = create_api_key(store=obj.store, name=obj.name, scope=obj.scope)
        obj.pk, obj.prefix, obj.hashed_key = key.pk, key.prefix, key.hashed_key
        self.message_user(
            request,
            f"New API key for {obj.store.slug} — copy it now, it is not shown again: {raw}",
            messages.WARNING,
        )

    @admin.action(description="Revoke selected keys", permissions=["manage_keys"])
    def revoke(self, request, queryset):
        n = 0
        for key in queryset:
            revoke_api_key(key=key)
            n += 1
        self.message_user(request, f"Revoked {n} key(s).")


@admin.register(Event)
class EventAdmin(StoreScopedAdmin):
    """A store's events are its audit log: its members read them; nobody edits them."""

    list_display = ["id", "topic", "store", "order_id", "created_at", "published_at"]
    list_filter = ["topic", "store"]
    search_fields = ["order_id", "subject_id", "topic"]
    list_select_related = ["store"]
    readonly_fields = [f.name for f in Event._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
