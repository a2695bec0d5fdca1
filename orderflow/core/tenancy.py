"""Tenancy, enforced in one place: stores, members, API keys, the middleware and scoped querysets.

`X-Store-ID` names the store; the credential (a store API key, or a session user who is a member)
proves the right to act for it. The middleware resolves both once per request, puts the store on
`request.store` and in a context variable, and answers every mismatch with the contract's codes.
Scoped managers fail closed: with no store in context they raise instead of returning every
store's rows.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db import utils as db
from django.utils import timezone
from rest_framework import authentication, throttling

from .errors import (
    Forbidden,
    NotAuthenticated,
    StoreNotFound,
    StoreRequired,
    error_response,
)

# ------------------------------------------------------------------------------------ models


class Store(models.Model):
    """A shop sharing this deployment. `settings` holds the per-store step switches and limits."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3, default="EUR")
    settings = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    DEFAULT_SETTINGS: dict[str, Any] = {
        "fraud_check_enabled": True,
        "fraud_review_threshold": 50,
        "fraud_reject_threshold": 80,
        "fraud_amount_limit": "1000.00",
        "fraud_high_risk_countries": ["KP", "IR"],
        "fulfillment_autopilot": None,  # None = follow FULFILLMENT_AUTOPILOT
        "order_expiry_minutes": None,  # None = follow ORDER_EXPIRY_MINUTES
        "timezone": "UTC",  # the dashboard's times (store_settings.store_timezone)
        "payment_window_minutes": None,  # None = follow PAYMENT_WINDOW_MINUTES
    }

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    def setting(self, name: str) -> Any:
        """The store's value for a switch, falling back to the platform default."""
        value = (self.settings or {}).get(name)
        return self.DEFAULT_SETTINGS.get(name) if value is None else value


class StoreMembership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        OPERATOR = "operator"
        VIEWER = "viewer"

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="store_memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.OPERATOR)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "user"], name="membership_unique_store_user")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.store} ({self.role})"


def hash_api_key(raw: str) -> str:
    """Keyed SHA-256: keys are long random strings, so a fast keyed hash is right (no slow KDF on
    the hot path), and a database leak alone does not let anyone forge one."""
    return hmac.new(settings.API_KEY_PEPPER.encode(), raw.encode(), hashlib.sha256).hexdigest()


class ApiKey(models.Model):
    """A store's secret. Only its prefix and keyed hash are kept; the key is shown once."""

    PREFIX_LEN = 10

    class Scope(models.TextChoices):
        """What the key may do (orderflow/core/permissions.py): like Stripe's secret and
        restricted keys, chosen at creation and never widened afterwards."""

        FULL = "full"
        READ_ONLY = "read_only"

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, default="default")
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.FULL)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    hashed_key = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["store", "prefix"], name="apikey_store_prefix")]

    def __str__(self) -> str:
        return f"{self.store.slug}:{self.prefix}…"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


def create_api_key(
    *, store: Store, name: str = "default", scope: str = ApiKey.Scope.FULL
) -> tuple[ApiKey, str]:
    """Make a key; the raw value is returned once and never stored."""
    if scope not in ApiKey.Scope.values:
        raise ValueError(f"unknown API key scope {scope!r}")
    prefix = secrets.token_hex(ApiKey.PREFIX_LEN // 2)
    raw = f"of_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        store=store, name=name, scope=scope, prefix=prefix, hashed_key=hash_api_key(raw)
    )
    return key, raw


def revoke_api_key(*, key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


def find_api_key(raw: str) -> ApiKey | None:
    """Constant-time check of a presented key; None for unknown or malformed keys."""
    parts = raw.split("_")
    if len(parts) < 3 or parts[0] != "of":
        return None
    key = ApiKey.objects.select_related("store").filter(prefix=parts[1]).first()
    if key is None or not hmac.compare_digest(key.hashed_key, hash_api_key(raw)):
        return None
    return key


def _touch_key(key: ApiKey) -> None:
    """Record use at most once a minute, so the hot path does not write on every request."""
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > timedelta(seconds=60):
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now


def user_can_open_store(user: Any, store: Store) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_superuser:
        return True
    return StoreMembership.objects.filter(store=store, user=user).exists()


def stores_for_user(user: Any):
    if not getattr(user, "is_authenticated", False):
        return Store.objects.none()
    if user.is_superuser:
        return Store.objects.all()
    return Store.objects.filter(memberships__user=user)


# ------------------------------------------------------------------------- store context

_current_store: contextvars.ContextVar[Store | None] = contextvars.ContextVar("current_store", default=None)


class NoStoreInContext(RuntimeError):
    """A tenant-owned table was queried with no store set: fail closed."""


def current_store() -> Store | None:
    return _current_store.get()


@contextlib.contextmanager
def use_store(store: Store | None):
    """Set the store for the duration of a request or task."""
    token = _current_store.set(store)
    try:
        yield store
    finally:
        _current_store.reset(token)


class StoreScopedQuerySet(models.QuerySet):
    def for_store(self, store: Store | int):
        if store is None:
            raise NoStoreInContext("for_store() needs a store")
        return self.filter(store=store)


class StoreScopedManager(models.Manager.from_queryset(StoreScopedQuerySet)):
    """`Model.objects`: filtered to the store in context; raises when there is none.

    Code that means to cross stores (admin for platform staff, beat jobs) says so by using
    `Model.all_stores`, the unscoped default manager.
    """

    def get_queryset(self):
        store = _current_store.get()
        if store is None:
            raise NoStoreInContext(f"{self.model.__name__}.objects used with no store in context")
        return super().get_queryset().filter(store=store)

    def for_store(self, store: Store | int):
        if store is None:
            raise NoStoreInContext("for_store() needs a store")
        return StoreScopedQuerySet(self.model, using=self._db).filter(store=store)

    def none(self):
        """Empty in every store, so safe with none in context (the schema generator asks for it)."""
        return StoreScopedQuerySet(self.model, using=self._db).none()


class TenantModel(models.Model):
    """Base for every tenant-owned table: carries `store`, two managers, scoped by default."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+")

    all_stores = models.Manager.from_queryset(StoreScopedQuerySet)()
    objects = StoreScopedManager()

    class Meta:
        abstract = True
        default_manager_name = "all_stores"
        base_manager_name = "all_stores"


# ------------------------------------------------------------------------------- request


@dataclass
class ApiKeyPrincipal:
    """`request.user` for a request authenticated by a store key (no Django user behind it)."""

    api_key: ApiKey
    is_authenticated: bool = True
    is_active: bool = True
    is_staff: bool = False
    is_superuser: bool = False
    is_anonymous: bool = False
    pk: None = None
    id: None = None

    @property
    def username(self) -> str:
        return f"api_key:{self.api_key.prefix}"

    def __str__(self) -> str:
        return self.username

    def has_perm(self, *a: Any, **k: Any) -> bool:
        return False


# Paths under /api/ that need no store (public tracking, carriers, schema and docs; the API root).
PUBLIC_API_PREFIXES = ("/api/v1/track/", "/api/v1/carriers/", "/api/schema", "/api/docs", "/api/redoc")
PUBLIC_API_PATHS = frozenset({"/api/v1/"})

# The session key holding the slug of the store a signed-in member last chose on the dashboard; the
# browsable API acts for it when the request names no store. (Core owns it: the dashboard writes it.)
STORE_SESSION_KEY = "dashboard_store"


def actor_name(request: Any) -> str:
    user = getattr(request, "user", None)
    if isinstance(user, ApiKeyPrincipal):
        return user.username
    if user is not None and getattr(user, "is_authenticated", False):
        return user.get_username()
    return "system"


class TenantMiddleware:
    """Resolves the store and the right to it for every /api/v1 request; answers mismatches itself."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.store = None
        request.api_key = None
        path = request.path
        if (
            not path.startswith("/api/v1/")
            or path.startswith(PUBLIC_API_PREFIXES)
            or path in PUBLIC_API_PATHS
        ):
            return self.get_response(request)
        try:
            store, principal = self.resolve(request)
        except (db.OperationalError, db.InterfaceError):
            # The first query of every API request is here: a dropped or refused database
            # connection is a dependency down (503), not a bug of ours (500).
            resp = error_response("service_unavailable", "The database is unavailable; retry shortly.", 503)
            resp["Retry-After"] = "1"
            return resp
        except (StoreRequired, StoreNotFound, Forbidden, NotAuthenticated) as exc:
            headers = {"WWW-Authenticate": 'Bearer realm="api"'} if exc.status == 401 else {}
            resp = error_response(exc.code, exc.message, exc.status)
            for k, v in headers.items():
                resp[k] = v
            return resp
        request.store = store
        if isinstance(principal, ApiKeyPrincipal):
            request.api_key = principal.api_key
            request.user = principal
            request._dont_enforce_csrf_checks = True
        with use_store(store):
            return self.get_response(request)

    @staticmethod
    def store_slug(request) -> str:
        """`X-Store-ID`, always first. A browser (no Authorization header) cannot set it, so a
        signed-in member browsing the API names the store with `?store=<slug>`, or else acts for
        the store last chosen on the dashboard. Membership is checked after, the same for all."""
        slug = request.headers.get("X-Store-ID", "").strip()
        if slug or "Authorization" in request.headers:
            return slug
        slug = request.GET.get("store", "").strip()
        session = getattr(request, "session", None)
        if not slug and session is not None:
            slug = str(session.get(STORE_SESSION_KEY) or "").strip()
        return slug

    def resolve(self, request) -> tuple[Store, Any]:
        """The credential first (401 without one, whatever the headers), then the store."""
        auth = request.headers.get("Authorization", "")
        key = None
        user = getattr(request, "user", None)
        if auth:
            scheme, _, raw = auth.partition(" ")
            if scheme.lower() != "bearer" or not raw.strip():
                raise NotAuthenticated("Use `Authorization: Bearer <store API key>`.")
            key = find_api_key(raw.strip())
            if key is None or not key.is_active:
                raise NotAuthenticated("That API key is unknown or revoked.")
        elif user is None or not user.is_authenticated:
            raise NotAuthenticated()
        slug = self.store_slug(request)
        if not slug:
            raise StoreRequired()
        store = (
            key.store
            if key is not None and key.store.slug == slug
            else Store.objects.filter(slug=slug).first()
        )
        if store is None:
            raise StoreNotFound(f"No store '{slug[:64]}'.")
        if key is not None:
            if key.store_id != store.pk:
                raise Forbidden("This key may not act for that store.")
            _touch_key(key)
            return store, ApiKeyPrincipal(api_key=key)
        if not user_can_open_store(user, store):
            raise Forbidden("You are not a member of that store.")
        return store, user


class StoreAuthentication(authentication.BaseAuthentication):
    """DRF side of the middleware: hands DRF the principal it already resolved.

    Session users still get DRF's CSRF check (the browsable API sends the token).
    """

    def authenticate(self, request):
        django_request = request._request
        user = getattr(django_request, "user", None)
        if isinstance(user, ApiKeyPrincipal):
            return user, user.api_key
        if user is not None and user.is_authenticated and getattr(django_request, "store", None) is not None:
            authentication.SessionAuthentication().enforce_csrf(django_request)
            return user, None
        return None

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class StoreKeyThrottle(throttling.SimpleRateThrottle):
    """Rate limit per (store, credential), counted in the shared cache (Redis)."""

    scope = "store_key"

    def get_cache_key(self, request, view):
        store = getattr(request._request, "store", None)
        if store is None:
            return None
        user = request.user
        ident = user.username if isinstance(user, ApiKeyPrincipal) else f"user:{getattr(user, 'pk', None)}"
        return f"throttle:{store.pk}:{ident}"

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception:  # the cache being down must not take the API down with it
            return True
