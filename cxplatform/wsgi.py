"""WSGI entry point: plain HTTP under gunicorn (optional, see docs/operations.md)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxplatform.settings.base")
application = get_wsgi_application()

from cxplatform.gc_tuning import freeze_startup_objects  # noqa: E402  (needs Django set up first)

freeze_startup_objects()
