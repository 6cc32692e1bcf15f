from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, generics
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.api.serializers import AgentSerializer, AvailabilitySerializer, MeSerializer, TeamSerializer
from accounts.models import Team, User


class MeApi(APIView):
    @extend_schema(responses=MeSerializer, summary="The signed-in user")
    def get(self, request):
        return Response(MeSerializer(selectors.agent_list(viewer=request.user).get(pk=request.user.pk)).data)

    @extend_schema(request=MeSerializer, responses=MeSerializer, summary="Update own name, language, time zone or availability")
    def patch(self, request):
        serializer = MeSerializer(request.user, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        user = request.user
        availability = serializer.validated_data.pop("availability", None)
        for field, value in serializer.validated_data.items():
            setattr(user, field, value)
        user.full_clean(exclude=["password"])
        user.save(update_fields=list(serializer.validated_data) or None)
        if availability:
            services.user_availability_set(user=user, availability=availability)
        return Response(MeSerializer(selectors.agent_list(viewer=user).get(pk=user.pk)).data)


class TeamListApi(generics.ListAPIView):
    queryset = Team.objects.none()  # for the schema; requests use the scoped selector
    serializer_class = TeamSerializer
    ordering = "name"
    ordering_fields = ["name"]

    def get_queryset(self):
        return selectors.team_list(viewer=self.request.user)


class AgentListApi(generics.ListAPIView):
    queryset = User.objects.none()  # for the schema; requests use the scoped selector
    serializer_class = AgentSerializer
    ordering = "id"
    ordering_fields = ["id"]

    def get_queryset(self):
        team = self.request.query_params.get("team")
        return selectors.agent_list(
            viewer=self.request.user,
            team_id=int(team) if team and team.isdigit() else None,
            availability=self.request.query_params.get("availability") or None,
        )


class AgentAvailabilityApi(APIView):
    @extend_schema(request=AvailabilitySerializer, responses=AgentSerializer, summary="Set an agent's availability")
    def post(self, request, pk: int):
        agent = get_object_or_404(selectors.agent_list(viewer=request.user), pk=pk)
        if agent.pk != request.user.pk and not selectors.user_is_supervisor_or_admin(user=request.user):
            raise exceptions.PermissionDenied("Only supervisors and admins may set another agent's availability.")
        serializer = AvailabilitySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.user_availability_set(user=agent, availability=serializer.validated_data["availability"])
        return Response(AgentSerializer(selectors.agent_list(viewer=request.user).get(pk=agent.pk)).data)
