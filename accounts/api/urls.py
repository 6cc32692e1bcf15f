from django.urls import path

from accounts.api import views

urlpatterns = [
    path("me/", views.MeApi.as_view(), name="api-me"),
    path("teams/", views.TeamListApi.as_view(), name="api-team-list"),
    path("agents/", views.AgentListApi.as_view(), name="api-agent-list"),
    path("agents/<int:pk>/availability/", views.AgentAvailabilityApi.as_view(), name="api-agent-availability"),
]
