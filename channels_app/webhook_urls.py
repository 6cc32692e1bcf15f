from django.urls import path

from channels_app import webhooks

urlpatterns = [
    path("<slug:kind>/<str:inbox_uuid>/", webhooks.webhook_receive, name="channels-webhook"),
]
