"""The admin, scoped by the one permission policy (orderflow/core/permissions.py).

Every ModelAdmin of a store's rows derives from `StoreScopedAdmin`: a member sees the rows of the
stores where they hold the admin's `view_perm`, writes where they hold its `manage_perm`, and runs
an action where they hold the permission the action declares — on those stores' rows only, however
the POST was crafted. Django's model permissions decide nothing for store rows (staff status is
still what lets a user into the admin at all). Models only platform staff may see use
`PlatformOnlyAdmin`. Superusers, platform staff, see and do everything.
"""

from __future__ import annotations

import functools

from django.contrib import admin
from django.contrib.admin.filters import RelatedOnlyFieldListFilter
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.http import Http404

from .permissions import Perm, stores_with
from .tenancy import Store


def _is_platform_staff(request) -> bool:
    user = request.user
    return bool(user.is_active and user.is_superuser)


def store_ids_with(request, perm: Perm | None) -> frozenset[int]:
    """The ids of the stores where the request's user holds `perm`, looked up once per request."""
    if perm is None:
        return frozenset()
    cache = request.__dict__.setdefault("_admin_store_ids", {})
    if perm not in cache:
        cache[perm] = frozenset(stores_with(request.user, perm).values_list("pk", flat=True))
    return cache[perm]


def _is_store_scoped(model) -> bool:
    """A model whose rows belong to one store: Store itself, or anything with a `store` FK."""
    if model is Store:
        return True
    try:
        field = model._meta.get_field("store")
    except FieldDoesNotExist:
        return False
    return getattr(field, "related_model", None) is Store


def _store_id_of(obj, path: str) -> int | None:
    """Follow `path` ("store", "order__store", or "pk" for a Store) from `obj` to its store's id."""
    if obj is None:
        return None
    if path == "pk":
        return obj.pk
    *parents, last = path.split("__")
    for name in parents:
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return getattr(obj, f"{last}_id", None)


def _action_perm_method(perm: Perm):
    def has_perm(self, request, obj=None) -> bool:
        return self._holds(request, perm, obj)

    has_perm.__name__ = f"has_{perm.name.lower()}_permission"
    has_perm.__doc__ = f"Does the user hold {perm.value} (in obj's store, or in any of their stores)?"
    return has_perm


class _ScopedPermissions:
    """The policy's answer to Django's has_*_permission questions, shared by admins and inlines.

    `view_perm` opens the rows, `manage_perm` (None: nobody but platform staff) adds, changes and
    deletes them. For an action, `@admin.action(permissions=["manage_orders"])` names a `Perm`
    (lower-cased): a `has_manage_orders_permission` exists here for every one of them.
    """

    view_perm: Perm | None = Perm.VIEW
    manage_perm: Perm | None = None

    def _holds(self, request, perm: Perm | None, obj=None) -> bool:
        if _is_platform_staff(request):
            return True
        if not (request.user.is_active and request.user.is_staff) or perm is None:
            return False
        ids = store_ids_with(request, perm)
        if obj is None:
            return bool(ids)
        return self._store_id(obj) in ids

    def _store_id(self, obj) -> int | None:
        raise NotImplementedError

    def has_view_permission(self, request, obj=None):
        if _is_platform_staff(request):
            return super().has_view_permission(request, obj)
        return self._holds(request, self.view_perm, obj) or self._holds(request, self.manage_perm, obj)

    def has_change_permission(self, request, obj=None):
        if _is_platform_staff(request):
            return super().has_change_permission(request, obj)
        return self._holds(request, self.manage_perm, obj)

    def has_delete_permission(self, request, obj=None):
        if _is_platform_staff(request):
            return super().has_delete_permission(request, obj)
        return self._holds(request, self.manage_perm, obj)


for _perm in Perm:
    if _perm is not Perm.VIEW:  # has_view_permission is Django's own (above)
        setattr(_ScopedPermissions, f"has_{_perm.name.lower()}_permission", _action_perm_method(_perm))


class StoreScopedAdmin(_ScopedPermissions, admin.ModelAdmin):
    """The base of every ModelAdmin of a store's rows. Declare `store_field` (the path to the
    row's store, e.g. "order__store") when the model has no `store` of its own."""

    store_field = "store"

    def _store_id(self, obj) -> int | None:
        return _store_id_of(obj, self.store_field)

    # ------------------------------------------------------------------------- rows

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if _is_platform_staff(request):
            return qs
        ids = store_ids_with(request, self.view_perm) | store_ids_with(request, self.manage_perm)
        return qs.filter(**{f"{self.store_field}__in": ids})

    def get_object(self, request, object_id, from_field=None):
        """Another store's row is as absent as a missing one: 404, so its existence does not leak
        (Django would redirect with a message)."""
        obj = super().get_object(request, object_id, from_field)
        if obj is None and not _is_platform_staff(request):
            raise Http404
        return obj

    def has_module_permission(self, request):
        if _is_platform_staff(request):
            return super().has_module_permission(request)
        return self.has_view_permission(request)

    def has_add_permission(self, request):
        if _is_platform_staff(request):
            return super().has_add_permission(request)
        return self._holds(request, self.manage_perm)

    # ---------------------------------------------------------------------- choices

    def _choice_ids(self, request) -> frozenset[int]:
        """Stores a row of this admin may be written into."""
        return store_ids_with(request, self.manage_perm)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if not _is_platform_staff(request):
            limited = self._limited_choices(db_field.related_model, request)
            if limited is not None:
                kwargs["queryset"] = limited
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if not _is_platform_staff(request):
            limited = self._limited_choices(db_field.related_model, request)
            if limited is not None:
                kwargs["queryset"] = limited
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def _limited_choices(self, related, request):
        """A store picker lists the stores the user may write this model in; a picker of another
        store's rows (an order, an endpoint) lists those stores' rows only."""
        if related is Store:
            return Store.objects.filter(pk__in=self._choice_ids(request))
        if _is_store_scoped(related):
            return related._default_manager.filter(store_id__in=self._choice_ids(request))
        return None

    def get_list_filter(self, request):
        """A filter on a store (or a store's rows) offers only the values of the rows the user
        sees: Django's plain related filter would list every store in the deployment."""
        scoped = []
        for entry in super().get_list_filter(request):
            if isinstance(entry, str) and "__" not in entry:
                field = self.model._meta.get_field(entry)
                if isinstance(field, models.ForeignKey) and _is_store_scoped(field.related_model):
                    entry = (entry, RelatedOnlyFieldListFilter)
            scoped.append(entry)
        return scoped

    # ---------------------------------------------------------------------- actions

    def _action_perms(self, func) -> list[Perm | None]:
        mapped = {"view": self.view_perm, "add": self.manage_perm, "change": self.manage_perm}
        mapped["delete"] = self.manage_perm
        return [mapped[name] if name in mapped else Perm[name.upper()] for name in func.allowed_permissions]

    def get_actions(self, request):
        """Each action runs on the selected rows of the stores where the user holds what the action
        declares (a crafted POST naming another store's ids selects nothing). An action that
        declares nothing is platform staff's only (fail closed)."""
        actions = super().get_actions(request)
        if _is_platform_staff(request):
            return actions
        scoped = {}
        for name, (func, _, description) in actions.items():
            if not getattr(func, "allowed_permissions", None):
                continue
            scoped[name] = (self._scoped_action(func), name, description)
        return scoped

    def _scoped_action(self, func):
        perms = self._action_perms(func)

        @functools.wraps(func)
        def run(modeladmin, request, queryset):
            for perm in perms:
                queryset = queryset.filter(**{f"{self.store_field}__in": store_ids_with(request, perm)})
            return func(modeladmin, request, queryset)

        return run


class StoreScopedInline(_ScopedPermissions):
    """Mix into an InlineModelAdmin whose rows sit in the parent's store: the permission questions
    are asked of the parent (`obj`), whose store the inline rows share."""

    def _store_id(self, obj) -> int | None:
        return obj.pk if isinstance(obj, Store) else getattr(obj, "store_id", None)

    def has_add_permission(self, request, obj=None):
        if _is_platform_staff(request):
            return super().has_add_permission(request, obj)
        return self._holds(request, self.manage_perm, obj)


class PlatformOnlyAdmin:
    """Mix in first: the model is platform staff's alone (the stores list, users and groups, the
    beat schedule). Store members do not even see it in the index."""

    def has_module_permission(self, request):
        return _is_platform_staff(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return _is_platform_staff(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args):
        return _is_platform_staff(request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return _is_platform_staff(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return _is_platform_staff(request) and super().has_delete_permission(request, obj)

    def get_actions(self, request):
        return super().get_actions(request) if _is_platform_staff(request) else {}


def make_platform_only(site: admin.AdminSite, app_labels: tuple[str, ...]) -> None:
    """Re-register every admin of these apps (auth, django_celery_beat, axes) as platform staff's only,
    keeping the admin class the app registered."""
    for model, model_admin in list(site._registry.items()):
        if model._meta.app_label not in app_labels or isinstance(model_admin, PlatformOnlyAdmin):
            continue
        cls = type(model_admin)
        site.unregister(model)
        site.register(model, type(f"PlatformOnly{cls.__name__}", (PlatformOnlyAdmin, cls), {}))
