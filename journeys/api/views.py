"""Journeys API: parse → service/selector → serialize, nothing else."""
from __future__ import annotations

from django.db import transaction
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, permissions, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from customers.models import Customer
from customers.selectors import customer_get
from journeys import kpis, selectors, services
from journeys.api.serializers import (
    CsatResponseSerializer,
    EventCreateSerializer,
    EventSerializer,
    MaturityAssessmentCreateSerializer,
    MaturityAssessmentSerializer,
    MaturityScoresSerializer,
    ReportQuerySerializer,
    ReportSerializer,
    StageChangeSerializer,
    StageSetSerializer,
)
from journeys.maturity import maturity_result
from journeys.models import CsatResponse, MaturityAssessment, StageChange


class JourneysPermission(permissions.BasePermission):
    """`journeys.<action>_<model>`; the view names the model and the action per method."""

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        action = view.required_actions.get(request.method, "view")
        return user.has_perm(f"journeys.{action}_{view.permission_model}")


class ReportPermission(permissions.BasePermission):
    message = "Reports are for supervisors and admins."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and selectors.reports_can_view(viewer=request.user))


def _customer_or_404(request, pk: int) -> Customer:
    try:
        return customer_get(viewer=request.user, customer_id=pk, with_related=False)
    except Customer.DoesNotExist:
        raise Http404 from None


class EventCreateApi(APIView):
    permission_classes = [JourneysPermission]
    permission_model = "customerevent"
    required_actions = {"POST": "add"}

    @extend_schema(
        request=EventCreateSerializer,
        responses={201: EventSerializer, 200: OpenApiResponse(EventSerializer, description="Replay of a known event id: the original result, nothing stored.")},
        summary="Record a customer event (idempotent on id)",
    )
    def post(self, request):
        incoming = EventCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        who = data["customer"]
        result = services.customer_event_record(
            event_id=data["id"],
            event_type=data["type"],
            occurred_at=data["occurred_at"],
            email=who.get("email", ""),
            phone=who.get("phone", ""),
            external_id=who.get("external_id", ""),
            display_name=who.get("name", ""),
            properties=data.get("properties") or {},
        )
        event = result.event
        event.customer.refresh_from_db(fields=["lifecycle_stage"])
        return Response(EventSerializer(event).data, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class CustomerStageHistoryApi(generics.ListAPIView):
    permission_classes = [JourneysPermission]
    permission_model = "stagechange"
    required_actions: dict = {}
    serializer_class = StageChangeSerializer
    pagination_class = None
    queryset = StageChange.objects.none()

    def get_queryset(self):
        return selectors.stage_history(customer=_customer_or_404(self.request, self.kwargs["pk"]))


class CustomerStageSetApi(APIView):
    permission_classes = [JourneysPermission]
    permission_model = "stagechange"
    required_actions = {"POST": "add"}

    @extend_schema(request=StageSetSerializer, responses={201: StageChangeSerializer}, summary="Move a customer to a stage (audited, either direction)")
    def post(self, request, pk: int):
        customer = _customer_or_404(request, pk)
        incoming = StageSetSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        change = services.stage_set(
            customer=customer,
            to_stage=incoming.validated_data["stage"],
            actor=request.user,
            reason=StageChange.Reason.API,
            note=incoming.validated_data.get("reason", ""),
            request=request,
        )
        return Response(StageChangeSerializer(change).data, status=status.HTTP_201_CREATED)


class CsatResponseListApi(generics.ListAPIView):
    permission_classes = [JourneysPermission]
    permission_model = "csatresponse"
    required_actions: dict = {}
    serializer_class = CsatResponseSerializer
    queryset = CsatResponse.objects.none()

    @extend_schema(parameters=[
        OpenApiParameter("from", str, description="ISO date, inclusive"),
        OpenApiParameter("to", str, description="ISO date, exclusive"),
        OpenApiParameter("rating", int),
    ])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        window = kpis.period_from_query(self.request.query_params)
        rating = self.request.query_params.get("rating")
        return selectors.csat_response_list(
            viewer=self.request.user, since=window.start, until=window.end,
            rating=int(rating) if rating and rating.isdigit() else None,
        )


REPORT_PARAMETERS = [
    OpenApiParameter("from", str, description="ISO date, inclusive (default: 30 days ago)"),
    OpenApiParameter("to", str, description="ISO date, inclusive (default: today)"),
    OpenApiParameter("group_by", str, enum=["channel", "inbox", "agent", "team", "label", "period"],
                     description="Funnel: any value means first-touch channel; label groups a conversation under each of its labels"),
    OpenApiParameter("segment", int, description="Only customers of this saved segment (customers app) as it selects them now"),
    OpenApiParameter("period", str, enum=["day", "week", "month"], description="Bucket size when group_by=period"),
    OpenApiParameter("hours", str, enum=["calendar", "business"], description="KPIs only: count durations in calendar or business hours"),
]


class _ReportApi(APIView):
    permission_classes = [ReportPermission]
    report = staticmethod(lambda **kwargs: {})

    def get(self, request):
        query = ReportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        window = kpis.period_from_query(request.query_params)
        customers = None
        if query.validated_data.get("segment"):
            segment = selectors.report_segment_get(viewer=request.user, segment_id=query.validated_data["segment"])
            if segment is None:
                raise ValidationError({"segment": ["Unknown segment."]})
            customers = selectors.report_segment_customers(segment=segment)
        body = type(self).report(window=window, group_by=query.validated_data.get("group_by") or "",
                                 period=query.validated_data.get("period") or "month",
                                 hours=query.validated_data.get("hours") or "calendar", customers=customers)
        return Response(body)


class FunnelReportApi(_ReportApi):
    report = staticmethod(lambda **kw: kpis.funnel_report(window=kw["window"], group_by="channel" if kw["group_by"] else "",
                                                          customers=kw["customers"]))

    @extend_schema(parameters=REPORT_PARAMETERS, responses=ReportSerializer, summary="Lifecycle funnel")
    def get(self, request):
        return super().get(request)


class KpiReportApi(_ReportApi):
    report = staticmethod(kpis.service_report)

    @extend_schema(parameters=REPORT_PARAMETERS, responses=ReportSerializer, summary="Service KPIs")
    def get(self, request):
        return super().get(request)


class CsatReportApi(_ReportApi):
    report = staticmethod(lambda **kw: kpis.csat_report(window=kw["window"], group_by=kw["group_by"], period=kw["period"],
                                                        customers=kw["customers"]))

    @extend_schema(parameters=REPORT_PARAMETERS, responses=ReportSerializer, summary="CSAT and response rate")
    def get(self, request):
        return super().get(request)


def _assessment_body(assessment) -> dict:
    result = maturity_result(assessment=assessment)
    return {
        "id": assessment.pk, "title": assessment.title, "created_at": assessment.created_at, "notes": assessment.notes,
        "evidence": assessment.evidence, "assessors": [a.email for a in result["assessors"]],
        "dimensions": [{k: row[k] for k in ("code", "label", "scores", "median", "target", "evidence")} for row in result["rows"]],
    }


def _record_scores(*, assessment, assessor, scores: list[dict]) -> None:
    for item in scores:
        services.maturity_score_record(assessment=assessment, assessor=assessor, **item)


class MaturityAssessmentListApi(APIView):
    permission_classes = [ReportPermission]

    @extend_schema(responses=MaturityAssessmentSerializer(many=True), summary="Maturity assessments, newest first")
    def get(self, request):
        assessments = MaturityAssessment.objects.order_by("-created_at", "-id")[:100]
        return Response([_assessment_body(a) for a in assessments])

    @extend_schema(request=MaturityAssessmentCreateSerializer, responses={201: MaturityAssessmentSerializer},
                   summary="Open an assessment (optionally with your scores)")
    def post(self, request):
        incoming = MaturityAssessmentCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        with transaction.atomic():
            assessment = services.maturity_assessment_create(title=data["title"], notes=data.get("notes", ""), actor=request.user)
            _record_scores(assessment=assessment, assessor=request.user, scores=data.get("scores") or [])
        return Response(_assessment_body(assessment), status=status.HTTP_201_CREATED)


class MaturityAssessmentDetailApi(APIView):
    permission_classes = [ReportPermission]

    @extend_schema(responses=MaturityAssessmentSerializer, summary="One assessment with each assessor's scores and the medians")
    def get(self, request, pk: int):
        return Response(_assessment_body(_assessment_or_404(pk)))


class MaturityScoresApi(APIView):
    permission_classes = [ReportPermission]

    @extend_schema(request=MaturityScoresSerializer, responses=MaturityAssessmentSerializer, summary="Add or replace your scores")
    def post(self, request, pk: int):
        assessment = _assessment_or_404(pk)
        incoming = MaturityScoresSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        with transaction.atomic():
            _record_scores(assessment=assessment, assessor=request.user, scores=incoming.validated_data["scores"])
        return Response(_assessment_body(assessment))


def _assessment_or_404(pk: int):
    assessment = MaturityAssessment.objects.filter(pk=pk).first()
    if assessment is None:
        raise Http404
    return assessment
