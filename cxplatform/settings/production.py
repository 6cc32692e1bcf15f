"""Production: PostgreSQL + Redis, HTTPS behind a proxy, secrets only from the environment."""
from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from cxplatform import env
from cxplatform.settings.base import *  # noqa: F403  (settings modules layer by design)
from cxplatform.settings.base import BASE_DIR

DEBUG = env.env_bool("DEBUG", False)
SECRET_KEY = env.env_str("SECRET_KEY", required=True)
if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 random characters.")
ALLOWED_HOSTS = env.env_list("ALLOWED_HOSTS")
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("Set ALLOWED_HOSTS to the host names this deployment answers to.")

_database_url = env.env_str("DATABASE_URL", required=True)
if not _database_url.startswith(("postgres://", "postgresql://")):
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL in production.")
# daphne runs Django under ASGI: use the psycopg pool (reference/performance-baselines.md).
DATABASES = {"default": env.database_from_url(_database_url, base_dir=BASE_DIR, pool=env.env_bool("DATABASE_POOL", True))}
if not env.env_str("REDIS_URL"):
    raise ImproperlyConfigured("Set REDIS_URL: production needs Redis for websockets, tasks and caching.")

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = False

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.env_bool("SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env.env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.env_bool("SECURE_HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
