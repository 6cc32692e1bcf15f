from django.urls import path

from integrations.api import views

urlpatterns = [
    path("webhooks/", views.WebhookSubscriptionListCreateApi.as_view(), name="api-webhooks"),
    path("webhooks/<int:pk>/", views.WebhookSubscriptionDetailApi.as_view(), name="api-webhook"),
    path("webhooks/<int:pk>/deliveries/", views.WebhookDeliveryListApi.as_view(), name="api-webhook-deliveries"),
    path(
        "webhook-deliveries/<int:pk>/redeliver/",
        views.WebhookDeliveryRedeliverApi.as_view(),
        name="api-webhook-delivery-redeliver",
    ),
]
