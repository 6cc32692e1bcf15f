"""Webhook subscriptions API: parse → service/selector → serialize."""
from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, status
from rest_framework.response import Response

from integrations import selectors, services
from integrations.api.serializers import (
    WebhookDeliverySerializer,
    WebhookSubscriptionCreatedSerializer,
    WebhookSubscriptionCreateSerializer,
    WebhookSubscriptionSerializer,
    WebhookSubscriptionUpdateSerializer,
)
from integrations.models import WebhookDelivery, WebhookSubscription


class WebhooksPermission(permissions.BasePermission):
    message = "Only admins manage webhooks."

    def has_permission(self, request, view):
        return selectors.webhooks_can_manage(viewer=request.user)


def _base_permissions():
    from rest_framework.settings import api_settings

    return [*api_settings.DEFAULT_PERMISSION_CLASSES, WebhooksPermission]


class WebhookSubscriptionListCreateApi(generics.ListAPIView):
    scope_group = "webhooks"
    queryset = WebhookSubscription.objects.none()
    serializer_class = WebhookSubscriptionSerializer
    permission_classes = _base_permissions()
    filterset_fields = ["active"]
    ordering_fields = ["id", "created_at"]

    def get_queryset(self):
        return selectors.webhook_subscription_list(viewer=self.request.user)

    @extend_schema(request=WebhookSubscriptionCreateSerializer, responses={201: WebhookSubscriptionCreatedSerializer})
    def post(self, request):
        serializer = WebhookSubscriptionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription, secret = services.webhook_subscription_create(owner=request.user, **serializer.validated_data)
        subscription.secret = secret
        return Response(WebhookSubscriptionCreatedSerializer(subscription).data, status=status.HTTP_201_CREATED)


class WebhookSubscriptionDetailApi(generics.GenericAPIView):
    scope_group = "webhooks"
    queryset = WebhookSubscription.objects.none()
    serializer_class = WebhookSubscriptionSerializer
    permission_classes = _base_permissions()

    def _get(self, pk: int) -> WebhookSubscription:
        subscription = selectors.webhook_subscription_list(viewer=self.request.user).filter(pk=pk).first()
        if subscription is None:
            raise Http404
        return subscription

    def get(self, request, pk: int):
        return Response(WebhookSubscriptionSerializer(self._get(pk)).data)

    @extend_schema(request=WebhookSubscriptionUpdateSerializer, responses={200: WebhookSubscriptionSerializer})
    def patch(self, request, pk: int):
        subscription = self._get(pk)
        serializer = WebhookSubscriptionUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription = services.webhook_subscription_update(subscription=subscription, **serializer.validated_data)
        return Response(WebhookSubscriptionSerializer(subscription).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        services.webhook_subscription_delete(subscription=self._get(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveryListApi(generics.ListAPIView):
    scope_group = "webhooks"
    queryset = WebhookDelivery.objects.none()
    serializer_class = WebhookDeliverySerializer
    permission_classes = _base_permissions()
    filterset_fields = ["status", "event_type"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return WebhookDelivery.objects.none()
        subscription = selectors.webhook_subscription_list(viewer=self.request.user).filter(pk=self.kwargs["pk"]).first()
        if subscription is None:
            raise Http404
        return selectors.webhook_delivery_list(viewer=self.request.user, subscription=subscription)


class WebhookDeliveryRedeliverApi(generics.GenericAPIView):
    scope_group = "webhooks"
    queryset = WebhookDelivery.objects.none()
    serializer_class = WebhookDeliverySerializer
    permission_classes = _base_permissions()

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    def post(self, request, pk: int):
        delivery = selectors.webhook_delivery_list(viewer=request.user).select_related("subscription").filter(pk=pk).first()
        if delivery is None:
            raise Http404
        copy = services.webhook_delivery_redeliver(delivery=delivery)
        copy.refresh_from_db()
        return Response(WebhookDeliverySerializer(copy).data, status=status.HTTP_202_ACCEPTED)
