"""WSGI entry point: plain HTTP under gunicorn (optional, see docs/operations.md)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxplatform.settings.base")
application = get_wsgi_application()

from cxplatform.gc_tuning import freeze_startup_objects  # noqa: E402  (needs Django set up first)
from cxplatform.warmup import warm_imports  # noqa: E402

warm_imports()  # what the first request would load, before the freeze so it is frozen too
freeze_startup_objects()
