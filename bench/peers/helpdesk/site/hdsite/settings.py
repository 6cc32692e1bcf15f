"""Minimal Django project serving django-helpdesk for the peer benchmark (issue 8 §8).

Configured as a production deployment of the peer would be: DEBUG off, PostgreSQL with persistent
connections (like our gunicorn processes), DRF with token auth for the API. It shares the
benchmark PostgreSQL server but uses its own database (`helpdeskbench`).
Environment: PEER_DATABASE_URL (default postgres://postgres@127.0.0.1:54339/helpdeskbench),
PEER_VAR_DIR (media, mail spool; default <repo>/var/bench/peer-helpdesk).
"""
import os
from pathlib import Path
from urllib.parse import urlparse

BASE_DIR = Path(__file__).resolve().parent.parent
REPO = BASE_DIR.parent.parent.parent.parent
VAR_DIR = Path(os.environ.get("PEER_VAR_DIR", REPO / "var" / "bench" / "peer-helpdesk"))

SECRET_KEY = "peer-helpdesk-bench-" + "x" * 40  # loopback-only benchmark instance
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
SITE_ID = 1

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "helpdesk",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "hdsite.urls"
WSGI_APPLICATION = "hdsite.wsgi.application"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.debug",
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]

_db = urlparse(os.environ.get("PEER_DATABASE_URL", "postgres://postgres@127.0.0.1:54339/helpdeskbench"))
DATABASES = {"default": {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": _db.path.lstrip("/"),
    "USER": _db.username or "postgres",
    "PASSWORD": _db.password or "",
    "HOST": _db.hostname or "127.0.0.1",
    "PORT": str(_db.port or 5432),
    "CONN_MAX_AGE": 600,
    "CONN_HEALTH_CHECKS": True,
}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "Asia/Jakarta"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "/media/"
MEDIA_ROOT = VAR_DIR / "media"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/tickets/"

# Notifications go by SMTP, as in production, to the benchmark's local sink (bench/smtp_sink.py)
# when PEER_SMTP_PORT names it; otherwise they are rendered but not sent anywhere.
if os.environ.get("PEER_SMTP_PORT"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = "127.0.0.1"
    EMAIL_PORT = int(os.environ["PEER_SMTP_PORT"])
else:
    EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
DEFAULT_FROM_EMAIL = "helpdesk@bench.test"

HELPDESK_TEAMS_MODE_ENABLED = False  # no pinax-teams
# HELPDESK_KB_ENABLED stays at its default (True): 2.6.1 urls.py fails to import with it off.

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
