"""Django set-up shared by the peer-side scripts (seed.py, peerctl.py): run with the peer venv."""
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "site"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hdsite.settings")

STAFF_USERNAME = "bench-staff"
STAFF_EMAIL = "bench-staff@bench.test"
STAFF_PASSWORD = "bench-password-2026"
QUEUE_SLUG = "bench"


def setup() -> None:
    import django

    django.setup()


def bootstrap():
    """The staff superuser, its DRF token, the site name and the bench queue (local mail dir)."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.sites.models import Site
    from helpdesk.models import Queue
    from rest_framework.authtoken.models import Token

    User = get_user_model()
    user = User.objects.filter(username=STAFF_USERNAME).first()
    if user is None:
        user = User.objects.create_superuser(STAFF_USERNAME, STAFF_EMAIL, STAFF_PASSWORD)
    token, _ = Token.objects.get_or_create(user=user)
    Site.objects.update_or_create(pk=settings.SITE_ID, defaults={"domain": "127.0.0.1:8201", "name": "helpdesk bench"})
    spool = Path(settings.VAR_DIR) / "spool"
    spool.mkdir(parents=True, exist_ok=True)
    queue, _ = Queue.objects.update_or_create(slug=QUEUE_SLUG, defaults={
        "title": "Bench", "email_address": "support@bench.test", "allow_email_submission": True,
        "email_box_type": "local", "email_box_local_dir": str(spool), "email_box_interval": 0,
        "logging_type": "none"})
    return user, token, queue
