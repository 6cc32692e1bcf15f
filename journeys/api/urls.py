from django.urls import path

from journeys.api import views

urlpatterns = [
    path("events/", views.EventCreateApi.as_view(), name="api-event-create"),
    path("customers/<int:pk>/stage/", views.CustomerStageSetApi.as_view(), name="api-customer-stage"),
    path("customers/<int:pk>/stage-history/", views.CustomerStageHistoryApi.as_view(), name="api-customer-stage-history"),
    path("csat-responses/", views.CsatResponseListApi.as_view(), name="api-csat-responses"),
    path("reports/funnel/", views.FunnelReportApi.as_view(), name="api-report-funnel"),
    path("reports/kpis/", views.KpiReportApi.as_view(), name="api-report-kpis"),
    path("reports/csat/", views.CsatReportApi.as_view(), name="api-report-csat"),
    path("maturity-assessments/", views.MaturityAssessmentListApi.as_view(), name="api-maturity-list"),
    path("maturity-assessments/<int:pk>/", views.MaturityAssessmentDetailApi.as_view(), name="api-maturity-detail"),
    path("maturity-assessments/<int:pk>/scores/", views.MaturityScoresApi.as_view(), name="api-maturity-scores"),
]
