from django.urls import path

from accounts import views

urlpatterns = [
    path("", views.home, name="home"),
    path("me/availability/", views.availability_update, name="availability_update"),
    path("me/preferences/", views.preferences, name="preferences"),
    path("me/api-tokens/", views.api_tokens, name="api_tokens"),
    path("me/api-tokens/<int:pk>/revoke/", views.api_token_revoke, name="api_token_revoke"),
]
