"""OrderFlow settings: everything comes from the environment (see .env.example).

Two modes. Embedded (no DATABASE_URL): a SQLite file in WAL mode with IMMEDIATE transactions, and
whatever Redis `make run` found or started. Production (DATABASE_URL=postgres://..., REDIS_URL=
redis://...): what CI tests and what the README documents for scaling out.
"""

import os
import socket
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from orderflow.core import broker, secrets

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
# `make run` keeps this install's own secrets in var/secrets.env (scripts/run_stack.py): reading them
# here lets `manage.py` commands in the same checkout act on that install. Exported values and .env
# win; an empty SECRETS_ENV_FILE reads none.
SECRETS_ENV_FILE = env.str("SECRETS_ENV_FILE", default=str(VAR_DIR / "secrets.env"))
if SECRETS_ENV_FILE and Path(SECRETS_ENV_FILE).is_file():
    environ.Env.read_env(SECRETS_ENV_FILE, overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

# --- secrets ------------------------------------------------------------------------------------
# No defaults: with DEBUG off an unset or development value stops every process right here
# (orderflow/core/secrets.py, the one check); with DEBUG on an unset one takes a development value.
SECRET_KEY = env.str("SECRET_KEY", default="")
# Keyed hash of API keys. Its own setting, never SECRET_KEY: rotating that must not void every key.
API_KEY_PEPPER = env.str("API_KEY_PEPPER", default="")
# carrier=secret pairs: the HMAC secret of each carrier's signed webhook.
CARRIER_SECRETS = env.dict("CARRIER_SECRETS", default={})
# Fernet key(s) of the card vault, comma-separated for rotation (the first encrypts).
CARD_VAULT_KEY = env.str("CARD_VAULT_KEY", default="")
# HMAC key of the idempotency fingerprint.
IDEMPOTENCY_FINGERPRINT_KEY = env.str("IDEMPOTENCY_FINGERPRINT_KEY", default="")
_settled = secrets.settle(
    debug=DEBUG,
    SECRET_KEY=SECRET_KEY,
    API_KEY_PEPPER=API_KEY_PEPPER,
    CARRIER_SECRETS=CARRIER_SECRETS,
    CARD_VAULT_KEY=CARD_VAULT_KEY,
    IDEMPOTENCY_FINGERPRINT_KEY=IDEMPOTENCY_FINGERPRINT_KEY,
)
SECRET_KEY = _settled["SECRET_KEY"]
API_KEY_PEPPER = _settled["API_KEY_PEPPER"]
CARRIER_SECRETS = _settled["CARRIER_SECRETS"]
CARD_VAULT_KEY = _settled["CARD_VAULT_KEY"]
IDEMPOTENCY_FINGERPRINT_KEY = _settled["IDEMPOTENCY_FINGERPRINT_KEY"]

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
# Where this install is reached: tracking links and the trusted origins follow it (and so WEB_PORT).
_WEB_PORT = env.str("WEB_PORT", default="8000")
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default=f"http://127.0.0.1:{_WEB_PORT}")
CSRF_TRUSTED_ORIGINS = env.list(
    "CSRF_TRUSTED_ORIGINS",
    default=list(
        dict.fromkeys(
            [PUBLIC_BASE_URL.rstrip("/"), f"http://localhost:{_WEB_PORT}", f"http://127.0.0.1:{_WEB_PORT}"]
        )
    ),
)
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_celery_beat",
    "channels",
    "axes",
    "orderflow.core",
    "inventory",
    "orders",
    "payments",
    "fulfillment",
    "alerts",
    "dashboard",
    "orderflow.observability",  # metrics: listens to every app, none imports it
]

MIDDLEWARE = [
    "orderflow.observability.middleware.RequestMetricsMiddleware",  # outermost: times all the rest
    "orderflow.core.request_log.RequestLogMiddleware",
    "orderflow.core.errors.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "orderflow.core.tenancy.TenantMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks: turns a lockout into its 429
]

ROOT_URLCONF = "orderflow.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "orderflow.asgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database -----------------------------------------------------------------------------------
DATABASE_URL = env.str("DATABASE_URL", default="")
if DATABASE_URL:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DB_MODE = "postgres" if "postgres" in DATABASES["default"]["ENGINE"] else "other"
    # Opt-in connection pool (psycopg_pool) for ASGI servers. Under ASGI Django runs each request's
    # sync code in its own thread, so every concurrent request opens its own connection and a burst
    # of 200 buyers meets PostgreSQL's "too many clients" (a 500); Django's docs say to disable
    # persistent connections under ASGI and pool instead. A pool bounds connections per process and
    # makes the burst queue. Off (0) by default; the reliability suite's web server turns it on.
    DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=0)
    if DB_POOL_MAX_SIZE and DB_MODE == "postgres":
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps the connections, not Django
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env.int("DB_POOL_MIN_SIZE", default=1),
            "max_size": DB_POOL_MAX_SIZE,
            "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
        }  # Django passes the pool a connection check: one the server dropped is replaced
        # ...and on the first dead one, every idle one is tested at once (a restart drops them all)
        DATABASES["default"]["ENGINE"] = "orderflow.postgresql"
else:
    VAR_DIR.mkdir(exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env.str("SQLITE_PATH", default=str(VAR_DIR / "orderflow.sqlite3")),
            "OPTIONS": {
                # IMMEDIATE takes the write lock at BEGIN, so two writers queue instead of failing
                # half-way with "database is locked"; WAL lets readers run beside the writer.
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;"
                ),
            },
        }
    }
    DB_MODE = "embedded"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- redis, cache, channels, celery -------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or REDIS_URL
if CELERY_BROKER_URL.startswith("unix://"):
    # kombu spells a unix-socket Redis "redis+socket://"; redis-py and channels-redis say "unix://".
    CELERY_BROKER_URL = "redis+socket://" + CELERY_BROKER_URL[len("unix://") :]
# "redis" or "rabbitmq" (orderflow/core/broker.py reads it from the URL): every broker-specific
# setting below follows this, nothing else looks at the URL.
BROKER_KIND = broker.kind(CELERY_BROKER_URL)

CACHES = {
    "default": {
        "BACKEND": "orderflow.core.cache.SharedRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "of",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    # No redis-py read/write timeout on the layer's connections. A socket waits for
                    # its next message with a blocking BZPOPMIN of channels_redis's
                    # `brpop_timeout` (5 s): redis-py 8's default 5 s read timeout raced it (the
                    # page reconnecting every few seconds). And with any socket timeout redis-py
                    # sends each command through `asyncio.wait_for`, which on Python 3.11 loses a
                    # cancel that lands as the write completes: a closed socket's receive, cancelled
                    # by its consumer, went on to the next BZPOPMIN and looped for ever (one in ~25
                    # closes; tests/dashboard/test_layer_cancel.py). A dead peer is found by TCP
                    # keepalive instead (about 25 s: 10 s idle, then 3 probes 5 s apart).
                    "socket_timeout": None,
                    "socket_connect_timeout": 5,
                    "socket_keepalive": True,
                    # (the options this platform has: all three on Linux)
                    "socket_keepalive_options": {
                        option: value
                        for name, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3))
                        if (option := getattr(socket, name, None)) is not None
                    },
                }
            ],
            "prefix": "of-ch",
            "capacity": 1000,
            "expiry": 30,
        },
    }
}
# A live dashboard socket re-checks this often (seconds) that its session still exists and its user
# may still view the store, and closes if not: a removed member or a logged-out user stops
# receiving pushes within this time (a removal or logout also closes them at once, best effort).
DASHBOARD_SOCKET_RECHECK_SECONDS = env.float("DASHBOARD_SOCKET_RECHECK_SECONDS", default=30.0)

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 30
if BROKER_KIND == broker.RABBITMQ:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Publisher confirms: a publish returns once RabbitMQ has the message (on disk, for a
        # durable queue), and one it refused raises instead of vanishing — the outbox then keeps
        # the event unpublished and sends it again.
        "confirm_publish": True,
    }
    # AMQP heartbeats (seconds): a worker whose connection died unnoticed (a half-open TCP
    # connection, a broker that went away) finds out within about this long and reconnects, and
    # RabbitMQ requeues what that worker held unacknowledged.
    CELERY_BROKER_HEARTBEAT = env.int("CELERY_BROKER_HEARTBEAT", default=30)
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = broker.redis_transport_options(
        visibility_timeout=env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
    )
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Never let a web request wait on a dead broker for long: the outbox relay resends what failed.
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.3,
}
CELERY_TASK_DEFAULT_QUEUE = "default"
# On RabbitMQ the queues are durable quorum queues (RABBITMQ_QUEUE_TYPE=classic: durable classic
# queues, for a RabbitMQ without quorum queues); a countdown is then held by RabbitMQ (Celery's
# native delayed delivery, set up by every worker) in whole seconds, rounded up (orderflow/celery.py).
# On Redis this order is also the order a worker on several queues takes them in
# (broker.redis_transport_options): the flow's order, charges before the warehouse steps.
RABBITMQ_QUEUE_TYPE = env.str("RABBITMQ_QUEUE_TYPE", default="quorum")
CELERY_TASK_QUEUES = broker.task_queues(
    BROKER_KIND, ("default", "orders", "payments", "fulfillment", "webhooks"), queue_type=RABBITMQ_QUEUE_TYPE
)
CELERY_TASK_ROUTES = {
    # An event handler's task goes to the queue its `on_event` names (orderflow/core/events.py);
    # these route the steps' own tasks. The fraud check and the first charge turn share one task
    # (payments.receivers.screen_and_charge), so under a burst each screened order is charged at
    # once instead of waiting behind the screening of every newer order. An exact name wins over
    # the patterns.
    # Deliveries wait on stores' receivers (up to WEBHOOK_TIMEOUT_SECONDS each): on their own queue,
    # a slow or hostile receiver holds a webhooks slot, never one the order flow needs.
    "alerts.deliver_webhook": {"queue": "webhooks"},
    "orders.*": {"queue": "orders"},
    "inventory.*": {"queue": "orders"},
    "payments.*": {"queue": "payments"},
    "fulfillment.*": {"queue": "fulfillment"},
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_SEND_TASK_EVENTS = False
# No remote control (celery inspect/control): on Redis its broadcast mailbox is a pub/sub channel,
# and with kombu 5.7 + redis-py 8 a Redis restart crashes the worker in that pub/sub reconnect
# ("Unrecoverable error: 'NoneType' object has no attribute 'hostname'"), found by the
# reliability suite. Without it the worker reconnects to its queues and carries on. Off on
# RabbitMQ as well: nothing here uses it, and one worker behaves the same on either broker.
CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
# Celery's Django fix-up closes the database connection before and after every task unless this is
# set, so every task dialled PostgreSQL anew (a new backend process each time). Reuse it: the
# fix-up then closes it only every 2 × this many tasks, and orderflow/celery.py checks it before
# each task the way Django does per request (CONN_MAX_AGE, CONN_HEALTH_CHECKS, broken connections).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
# A worker pings its connection (CONN_HEALTH_CHECKS) before a task only after this long idle.
CELERY_DB_HEALTH_CHECK_IDLE_SECONDS = env.float("CELERY_DB_HEALTH_CHECK_IDLE_SECONDS", default=2.0)

# --- outbox -------------------------------------------------------------------------------------
# Events older than this and still unpublished are the relay's to send.
OUTBOX_RELAY_AFTER_SECONDS = env.float("OUTBOX_RELAY_AFTER_SECONDS", default=5.0)
OUTBOX_RELAY_BATCH = env.int("OUTBOX_RELAY_BATCH", default=500)
# Committed events are published by the outbox dispatcher (`manage.py run_outbox`, a process of
# its own), woken at COMMIT by a trigger's NOTIFY, in batches — with beat's relay as the backstop.
OUTBOX_DISPATCH_BATCH = env.int("OUTBOX_DISPATCH_BATCH", default=200)
# With no NOTIFY (SQLite) or a lost one, the dispatcher looks anyway this often (seconds).
OUTBOX_DISPATCH_POLL_SECONDS = env.float("OUTBOX_DISPATCH_POLL_SECONDS", default=1.0)
# After a NOTIFY the dispatcher waits this long before taking its batch, so a burst of commits
# travels as one batch (one stamp, one push per store) instead of one batch per commit.
OUTBOX_DISPATCH_LINGER_MS = env.float("OUTBOX_DISPATCH_LINGER_MS", default=50.0)

# --- the flow -----------------------------------------------------------------------------------
GATEWAY_URL = env.str("GATEWAY_URL", default="http://127.0.0.1:8001")
GATEWAY_CONNECT_TIMEOUT = env.float("GATEWAY_CONNECT_TIMEOUT", default=2.0)
GATEWAY_READ_TIMEOUT = env.float("GATEWAY_READ_TIMEOUT", default=10.0)
PAYMENT_MAX_RETRIES = env.int("PAYMENT_MAX_RETRIES", default=6)
PAYMENT_RETRY_BACKOFF = env.float("PAYMENT_RETRY_BACKOFF", default=2.0)
PAYMENT_RETRY_BACKOFF_MAX = env.float("PAYMENT_RETRY_BACKOFF_MAX", default=120.0)
PAYMENT_RETRY_JITTER = env.bool("PAYMENT_RETRY_JITTER", default=True)
BREAKER_FAILURE_THRESHOLD = env.int("BREAKER_FAILURE_THRESHOLD", default=5)
BREAKER_COOLDOWN_SECONDS = env.float("BREAKER_COOLDOWN_SECONDS", default=15.0)
# Waiting out an outage (payments.services): an order that meets the open breaker waits, spending
# no attempt, until its payment window ends (counted from when it was placed; a store may set
# `payment_window_minutes`, never above what the card vault keeps the card). Each waiting order
# has one wake-up at most every PAYMENT_WAIT_WAKEUP_SECONDS (and never past half the visibility
# timeout); when the gateway is back the waiting orders are released oldest first, at most
# GATEWAY_MAX_CONCURRENT_CALLS gateway calls at a time (a Redis semaphore around every charge).
CARD_VAULT_TTL_SECONDS = env.int("CARD_VAULT_TTL_SECONDS", default=3600)
PAYMENT_WINDOW_MINUTES = env.int("PAYMENT_WINDOW_MINUTES", default=60)
PAYMENT_WAIT_WAKEUP_SECONDS = env.float("PAYMENT_WAIT_WAKEUP_SECONDS", default=30.0)
GATEWAY_MAX_CONCURRENT_CALLS = env.int("GATEWAY_MAX_CONCURRENT_CALLS", default=8)
if PAYMENT_WINDOW_MINUTES * 60 > CARD_VAULT_TTL_SECONDS:
    raise ImproperlyConfigured(
        f"PAYMENT_WINDOW_MINUTES ({PAYMENT_WINDOW_MINUTES}) is longer than the card vault keeps a card "
        f"(CARD_VAULT_TTL_SECONDS={CARD_VAULT_TTL_SECONDS}): an order would wait for a card already gone."
    )
FULFILLMENT_AUTOPILOT = env.bool("FULFILLMENT_AUTOPILOT", default=False)
FULFILLMENT_AUTOPILOT_STEP_SECONDS = env.float("FULFILLMENT_AUTOPILOT_STEP_SECONDS", default=3.0)
CARRIER_SIMULATOR = env.bool("CARRIER_SIMULATOR", default=False)
CARRIER_STEP_SECONDS = env.float("CARRIER_STEP_SECONDS", default=10.0)
CARRIER_EXCEPTION_RATE = env.float("CARRIER_EXCEPTION_RATE", default=0.05)
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=48)
ORDER_EXPIRY_MINUTES = env.int("ORDER_EXPIRY_MINUTES", default=60)
# The reconciler (core.reconcile: every app's sweep): an order that has not moved for this long is
# stuck (pending with no fraud check, payment_processing with no payment, a leaked reservation);
# each sweep handles at most RECONCILE_BATCH orders per kind and store.
RECONCILE_STUCK_AFTER_SECONDS = env.float("RECONCILE_STUCK_AFTER_SECONDS", default=300.0)
RECONCILE_BATCH = env.int("RECONCILE_BATCH", default=200)
# ...but no re-drives while the queues of the fraud check and the charge hold more messages than
# this between them (0: no such check): the pipeline is behind then, not stuck.
RECONCILE_BACKLOG_LIMIT = env.int("RECONCILE_BACKLOG_LIMIT", default=1000)
RECONCILE_BACKLOG_QUEUES = env.list("RECONCILE_BACKLOG_QUEUES", default=["orders", "payments"])
# The fraud check's store average (30 days of orders) is cached this long per store (0: off).
FRAUD_HISTORY_CACHE_SECONDS = env.int("FRAUD_HISTORY_CACHE_SECONDS", default=60)
# PUBLIC_BASE_URL: next to CSRF_TRUSTED_ORIGINS above.

# --- API ----------------------------------------------------------------------------------------
MAX_REQUEST_BODY_BYTES = env.int("MAX_REQUEST_BODY_BYTES", default=1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES
# Per store and credential (API key or session user): 20 requests a second sustained, in the range
# of what Shopify and Stripe allow a store; a store that needs more raises it.
API_THROTTLE_RATE = env.str("API_THROTTLE_RATE", default="1200/min")
# Per client IP (REMOTE_ADDR: behind a proxy, have the server set it from the proxy's header) on the
# endpoints that take no credentials: the shopper's tracking (API and page) and carrier webhooks.
PUBLIC_THROTTLE_RATE = env.str("PUBLIC_THROTTLE_RATE", default="120/min")
CARRIER_THROTTLE_RATE = env.str("CARRIER_THROTTLE_RATE", default="600/min")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["orderflow.core.tenancy.StoreAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["orderflow.core.permissions.HasStorePermission"],
    "DEFAULT_THROTTLE_CLASSES": ["orderflow.core.tenancy.StoreKeyThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "store_key": API_THROTTLE_RATE,
        "public_ip": PUBLIC_THROTTLE_RATE,
        "carrier_ip": CARRIER_THROTTLE_RATE,
    },
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # JSON only: the schema then declares one request body per operation (the legacy intake
    # endpoint, orders.api.LegacyOrderView, keeps its form encoding with its own parsers).
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "orderflow.core.pagination.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "orderflow.core.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "orderflow.core.schema.OrderFlowAutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "COERCE_DECIMAL_TO_STRING": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "OrderFlow API",
    "DESCRIPTION": "Order orchestration for online stores. Every /api/v1 request names its store "
    "with X-Store-ID and authenticates with `Authorization: Bearer <store API key>` or a session.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # One name per choice set: drf-spectacular names enums by field name, so the order's
    # `fulfillment_status` and the fulfillment's `status` once shared `FulfillmentStatusEnum` and
    # generated clients could not parse orders. tests/contract/test_schema.py checks every enum.
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "orders.models.Order.Status",
        "OrderPaymentStatusEnum": "orders.models.Order.PaymentStatus",
        "OrderFulfillmentStatusEnum": "orders.models.Order.FulfillmentStatus",
        "FulfillmentStatusEnum": "fulfillment.models.Fulfillment.Status",
        "ShipmentStatusEnum": "fulfillment.models.Shipment.Status",
        "PaymentStatusEnum": "payments.models.Payment.Status",
        "AlertStatusEnum": "alerts.models.Alert.Status",
        "WebhookDeliveryStatusEnum": "alerts.models.WebhookDelivery.Status",
    },
    "TAGS": [
        {"name": "orders", "description": "Intake, reading, cancelling and tracking orders."},
        {"name": "payments", "description": "Fraud review decisions and payment attempts."},
        {"name": "inventory", "description": "Products, stock levels and stock movements."},
        {"name": "fulfillment", "description": "Picking, packing and shipping; carrier updates."},
        {"name": "alerts", "description": "Operational alerts."},
        {"name": "webhooks", "description": "Outgoing webhook endpoints and their deliveries."},
        {"name": "store", "description": "The store the request acts for, and its settings."},
        {"name": "keys", "description": "The store's API keys."},
        {"name": "dashboard", "description": "Figures for the dashboard."},
    ],
}

# --- auth, i18n, static -------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login throttling and lockout (django-axes) on every login form (the admin's, which the dashboard
# uses too): after LOGIN_FAILURE_LIMIT wrong passwords for one username from one IP, that pair is
# refused (429) for LOGIN_COOLOFF_MINUTES; a success resets the count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("LOGIN_COOLOFF_MINUTES", default=15.0))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True  # failures are what count; no row per successful login
AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)  # as everywhere else: never a client's header
LOGIN_URL = "/admin/login/"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# HTTPS. Secure by default with DEBUG off (`manage.py check --deploy` is clean); `make run`, the
# tests and the benchmarks serve plain http on localhost and turn these off explicitly.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # probes come over plain http from inside
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
# Behind a TLS-terminating proxy: "HTTP_X_FORWARDED_PROTO,https" (only if the proxy always sets it).
SECURE_PROXY_SSL_HEADER = tuple(env.list("SECURE_PROXY_SSL_HEADER", default=[])) or None
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
ALERT_EMAIL_TO = env.list("ALERT_EMAIL_TO", default=[])

# --- outgoing webhooks (alerts app) -------------------------------------------------------------
# Local development: webhooks may go to loopback (plain http too); see alerts/egress.py.
WEBHOOKS_ALLOW_HTTP_LOCALHOST = env.bool("WEBHOOKS_ALLOW_HTTP_LOCALHOST", default=False)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0)
WEBHOOK_MAX_RETRIES = env.int("WEBHOOK_MAX_RETRIES", default=8)
WEBHOOK_RETRY_BACKOFF = env.float("WEBHOOK_RETRY_BACKOFF", default=10.0)
# Far below the broker's visibility timeout (a longer countdown would be redelivered again and again).
WEBHOOK_RETRY_BACKOFF_MAX = env.float("WEBHOOK_RETRY_BACKOFF_MAX", default=600.0)
WEBHOOK_RETRY_JITTER = env.bool("WEBHOOK_RETRY_JITTER", default=True)
WEBHOOK_ENDPOINT_CACHE_SECONDS = env.float("WEBHOOK_ENDPOINT_CACHE_SECONDS", default=5.0)
WEBHOOK_STALE_AFTER_SECONDS = env.float("WEBHOOK_STALE_AFTER_SECONDS", default=300.0)

# --- metrics (orderflow/observability; docs/operations.md, "Metrics") ---------------------------
# GET /metrics (Prometheus text) wants `Authorization: Bearer <METRICS_TOKEN>`; with none set it is
# a 404: nothing is exposed by default. Give every process of a host the same empty-at-start
# PROMETHEUS_MULTIPROC_DIR (read from the environment by prometheus_client itself) and a scrape
# sums them all: web, workers, beat, dispatcher.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # set but empty would still turn the mode on
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
SECURE_REDIRECT_EXEMPT.append(r"^metrics$")  # scraped over plain http from inside, as the probes

# --- logging ------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "orderflow.core.request_log.ContextFilter"}},
    "formatters": {
        "line": {
            "format": "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s store=%(store)s "
            "order=%(order_id)s] %(message)s"
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "line", "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        "celery": {"level": LOG_LEVEL},
    },
}
