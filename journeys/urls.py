from django.urls import path

from journeys import views

app_name = "journeys"

urlpatterns = [
    path("dashboard/", views.dashboard_overview, name="overview"),
    path("dashboard/funnel/", views.dashboard_funnel, name="funnel"),
    path("dashboard/csat/", views.dashboard_csat, name="csat"),
    path("dashboard/kpis/", views.dashboard_kpis, name="kpis"),
    path("dashboard/kpis/conversations/", views.dashboard_kpi_conversations, name="kpi_conversations"),
    path("nps/", views.nps_campaigns, name="nps_list"),
    path("nps/<int:pk>/", views.nps_detail, name="nps_detail"),
    path("nps/<int:pk>/progress/", views.nps_progress, name="nps_progress"),
    path("maturity/", views.maturity_list, name="maturity_list"),
    path("maturity/<int:pk>/", views.maturity_detail, name="maturity_detail"),
]
