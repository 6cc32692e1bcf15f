from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.decorators.cache import cache_control
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from cxplatform import health
from journeys import views as journeys_views

api_v1 = [
    path("", include("accounts.api.urls")),
    path("", include("customers.api.urls")),
    path("", include("channels_app.api.urls")),
    path("", include("journeys.api.urls")),
    path("", include("integrations.api.urls")),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    # The customer-facing survey link is short and public (signed token, no login).
    path("survey/<str:token>/", journeys_views.survey, name="survey"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    # The workspace script's strings in the viewer's language (locale/*/djangojs.po). Pages ask
    # with ?lang=<code>, so a language switch fetches anew and the browser keeps each an hour.
    path("jsi18n/", cache_control(private=True, max_age=3600)(JavaScriptCatalog.as_view()), name="javascript-catalog"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("webhooks/", include("channels_app.webhook_urls")),
    path("widget/", include("channels_app.widget_urls")),
    path("inbox/", include("channels_app.urls")),
    path("customers/", include("customers.urls")),
    path("journeys/", include("journeys.urls")),
    path("", include("accounts.urls")),
]

if settings.BENCH_ENDPOINTS:  # the benchmark harness's baseline (cxplatform/bench_endpoint.py)
    from cxplatform import bench_endpoint

    urlpatterns.insert(0, path("bench/bare/", bench_endpoint.bare, name="bench-bare"))
