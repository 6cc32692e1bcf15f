"""The ASGI application the e2e daphne subprocess serves: the real one, plus static files."""
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from cxplatform.asgi import application as _application

application = ASGIStaticFilesHandler(_application)
