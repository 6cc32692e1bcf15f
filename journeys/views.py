"""HTML side: the public survey page and the supervisor dashboards (with CSV export)."""
from __future__ import annotations

import csv
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from journeys import kpis, nps, overview, selectors, services
from journeys.forms import (
    MaturityAssessmentForm,
    MaturityScoreForm,
    NpsCampaignForm,
    NpsSurveyForm,
    ReportFilterForm,
    SurveyForm,
)
from journeys.maturity import maturity_history, maturity_result
from journeys.maturity_grid import DIMENSIONS, text
from journeys.models import CsatResponse, CsatSurvey, MaturityAssessment, NpsCampaign, NpsSurvey


@never_cache
@require_http_methods(["GET", "POST"])
def survey(request, token: str):
    """Public (no login): the signed token names the survey; one answer per survey."""
    found = services.survey_from_token(token=token)
    if found is None:
        nps_survey = nps.nps_survey_from_token(token=token)
        if nps_survey is None:
            raise Http404
        return _nps_survey(request, nps_survey)
    state = "open"
    if found.status == CsatSurvey.Status.ANSWERED:
        state = "answered"
    elif found.status != CsatSurvey.Status.SENT or (found.expires_at and found.expires_at <= timezone.now()):
        state = "closed"
    form = SurveyForm(request.POST or None)
    if not services.journey_settings().nps_enabled:
        del form.fields["nps"]
    if request.method == "POST" and state == "open" and form.is_valid():
        try:
            services.csat_response_record(
                survey=found, rating=form.cleaned_data["rating"], comment=form.cleaned_data["comment"],
                nps=form.cleaned_data.get("nps"), via=CsatResponse.Via.LINK,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            state = "thanks"
    return render(request, "journeys/survey.html", {"form": form, "state": state, "survey": found})


def _nps_survey(request, found: NpsSurvey):
    """The 0–10 question of an NPS campaign (same public /survey/<token>/ address)."""
    state = "open"
    if found.status == NpsSurvey.Status.ANSWERED:
        state = "answered"
    elif found.status != NpsSurvey.Status.SENT or (found.expires_at and found.expires_at <= timezone.now()):
        state = "closed"
    form = NpsSurveyForm(request.POST or None)
    if request.method == "POST" and state == "open" and form.is_valid():
        try:
            nps.nps_response_record(survey=found, score=form.cleaned_data["score"], comment=form.cleaned_data["comment"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            state = "thanks"
    return render(request, "journeys/nps_survey.html", {"form": form, "state": state, "survey": found})


def _require_reports(request) -> None:
    if not selectors.reports_can_view(viewer=request.user):
        raise PermissionDenied


def _filters(request) -> tuple[ReportFilterForm, kpis.Window_, str, str]:
    form = ReportFilterForm(request.GET, segments=selectors.report_segment_choices(viewer=request.user))
    form.is_valid()
    data = getattr(form, "cleaned_data", {})
    window = kpis.period_from_query(request.GET)
    return form, window, data.get("group_by") or "", data.get("period") or "month"


def _segment_customers(request, form: ReportFilterForm):
    """The chosen segment's customers (None: everyone)."""
    segment_id = getattr(form, "cleaned_data", {}).get("segment")
    segment = selectors.report_segment_get(viewer=request.user, segment_id=segment_id) if segment_id else None
    return selectors.report_segment_customers(segment=segment) if segment is not None else None


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    minutes = value / 60
    if minutes < 90:
        return _("%(n).1f min") % {"n": minutes}
    hours = minutes / 60
    if hours < 48:
        return _("%(n).1f h") % {"n": hours}
    return _("%(n).1f days") % {"n": hours / 24}


def _percent(value: float | None, scale: float = 100.0) -> str:
    return "—" if value is None else f"{value * scale:.1f}%"


def _csv(filename: str, header: list[str], rows: list[list[Any]]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_csv_safe(value) for value in row])
    return response


def _csv_safe(value: Any) -> Any:
    # A cell starting with = + - @ is a formula in spreadsheets: neutralise it.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return "" if value is None else value


def _wants_csv(request) -> bool:
    return request.GET.get("format") == "csv"


@login_required
def dashboard_overview(request):
    _require_reports(request)
    form, window, _group, _period = _filters(request)
    context = {
        "form": form, "window": window, "live": overview.live_numbers(),
        "service": kpis.service_report(window=window), "csat": kpis.csat_report(window=window),
    }
    context["channel_rows"] = context["service"]["summary"]["channels"]
    if _wants_csv(request):
        return _csv("channel-mix.csv", ["channel", "messages", "inbound", "outbound", "conversations"],
                    [[r["channel"], r["messages"], r["inbound"], r["outbound"], r["conversations"]] for r in context["channel_rows"]])
    context["mix_chart"] = {"labels": [r["channel"] for r in context["channel_rows"]],
                            "series": [{"label": _("Messages"), "values": [r["messages"] for r in context["channel_rows"]]}]}
    context["frt"] = _seconds(context["service"]["summary"]["first_response"]["median_seconds"])
    context["csat_percent"] = _percent(context["csat"]["summary"]["csat_percent"], 1)
    return render(request, "journeys/overview.html", context)


@login_required
def dashboard_funnel(request):
    _require_reports(request)
    form, window, _group, _period = _filters(request)
    report = kpis.funnel_report(window=window, group_by="channel", customers=_segment_customers(request, form))
    stages = report["summary"]["stages"]
    if _wants_csv(request):
        if request.GET.get("table") == "cohorts":
            return _csv("funnel-cohorts.csv", ["month", "converted", "retained_1m", "retained_3m", "retained_6m"],
                        [[c["month"], c["converted"], c["retained_1m"], c["retained_3m"], c["retained_6m"]]
                         for c in report["summary"]["cohorts"]])
        if request.GET.get("table") == "channels":
            return _csv("funnel-by-channel.csv", ["first_touch_channel", "acquisition", "conversion", "retention", "loyalty"],
                        [[r["key"], r["acquisition"], r["conversion"], r["retention"], r["loyalty"]] for r in report["rows"]])
        return _csv("funnel.csv", ["stage", "entered", "went_on", "conversion_rate", "median_seconds_to_next"],
                    [[s["stage"], s["entered"], s["went_on"], s["conversion_rate"], s["median_seconds_to_next"]] for s in stages])
    cohorts = [{**c, "m1": _percent(c["retained_1m"]), "m3": _percent(c["retained_3m"]), "m6": _percent(c["retained_6m"])}
               for c in report["summary"]["cohorts"]]
    for stage in stages:
        stage["rate_display"] = _percent(stage["conversion_rate"])
        stage["time_display"] = _seconds(stage["median_seconds_to_next"])
    return render(request, "journeys/funnel.html", {
        "form": form, "window": window, "stages": stages, "channel_rows": report["rows"], "cohorts": cohorts,
        "chart": {"labels": [s["label"] for s in stages], "series": [{"label": _("Customers entering"), "values": [s["entered"] for s in stages]}]},
        "has_data": any(s["entered"] for s in stages),
    })


@login_required
def dashboard_csat(request):
    _require_reports(request)
    form, window, group_by, period = _filters(request)
    customers = _segment_customers(request, form)
    report = kpis.csat_report(window=window, group_by=group_by or "period", period=period, customers=customers)
    trend = report if not group_by or group_by == "period" else kpis.csat_report(window=window, group_by="period", period=period, customers=customers)
    if _wants_csv(request):
        return _csv("csat.csv", ["group", "responses", "satisfied", "csat_percent", "average_rating", "surveys_sent", "response_rate", "nps"],
                    [[r["label"], r["responses"], r["satisfied"], r["csat_percent"], r["average_rating"], r["surveys_sent"], r["response_rate"], r["nps"]]
                     for r in report["rows"]])
    for row in report["rows"]:
        row["csat_display"] = _percent(row["csat_percent"], 1)
        row["rate_display"] = _percent(row["response_rate"])
    summary = report["summary"]
    return render(request, "journeys/csat.html", {
        "form": form, "window": window, "summary": summary, "rows": report["rows"],
        "csat_display": _percent(summary["csat_percent"], 1), "rate_display": _percent(summary["response_rate"]),
        "chart": {"labels": [r["label"] for r in trend["rows"]], "series": [{"label": _("CSAT %"), "values": [r["csat_percent"] for r in trend["rows"]]}]},
        "distribution": {"labels": list(summary["distribution"]), "series": [{"label": _("Responses"), "values": list(summary["distribution"].values())}]},
        "recent": selectors.csat_response_list(viewer=request.user, since=window.start, until=window.end)[:20],
    })


@login_required
def dashboard_kpis(request):
    _require_reports(request)
    form, window, group_by, period = _filters(request)
    hours = request.GET.get("hours") if request.GET.get("hours") in ("calendar", "business") else "calendar"
    report = kpis.service_report(window=window, group_by=group_by or "channel", period=period, hours=hours,
                                 customers=_segment_customers(request, form))
    if _wants_csv(request):
        return _csv("kpis.csv", ["group", "conversations", "unanswered", "frt_median_s", "frt_p90_s", "resolutions",
                                 "resolution_median_s", "resolution_p90_s", "reopened", "reopen_rate",
                                 "fcr_eligible", "fcr_resolved_first_contact", "fcr_rate",
                                 "webchat_conversations", "webchat_abandoned", "webchat_abandonment_rate",
                                 "sla_first_response_measured", "sla_first_response_breached", "sla_first_response_breach_rate",
                                 "sla_resolution_measured", "sla_resolution_breached", "sla_resolution_breach_rate"],
                    [[r["label"], r["conversations"], r["unanswered"], r["first_response"]["median_seconds"],
                      r["first_response"]["p90_seconds"], r["resolutions"], r["resolution"]["median_seconds"],
                      r["resolution"]["p90_seconds"], r["reopened"], r["reopen_rate"],
                      r["fcr"]["eligible"], r["fcr"]["resolved_first_contact"], r["fcr"]["rate"],
                      r["webchat_abandonment"]["decided"], r["webchat_abandonment"]["abandoned"], r["webchat_abandonment"]["rate"],
                      r["sla"]["first_response"]["measured"], r["sla"]["first_response"]["breached"], r["sla"]["first_response"]["breach_rate"],
                      r["sla"]["resolution"]["measured"], r["sla"]["resolution"]["breached"], r["sla"]["resolution"]["breach_rate"]]
                     for r in report["rows"]])
    for row in [report["summary"], *report["rows"]]:
        row["frt_median"] = _seconds(row["first_response"]["median_seconds"])
        row["frt_p90"] = _seconds(row["first_response"]["p90_seconds"])
        row["res_median"] = _seconds(row["resolution"]["median_seconds"])
        row["res_p90"] = _seconds(row["resolution"]["p90_seconds"])
        row["reopen_display"] = _percent(row["reopen_rate"])
        row["fcr_display"] = _percent(row["fcr"]["rate"])
        row["abandon_display"] = _percent(row["webchat_abandonment"]["rate"])
        row["sla_frt_display"] = _percent(row["sla"]["first_response"]["breach_rate"])
        row["sla_res_display"] = _percent(row["sla"]["resolution"]["breach_rate"])
    rows = report["rows"]
    return render(request, "journeys/kpis.html", {
        "form": form, "window": window, "summary": report["summary"], "rows": rows,
        "group_by": group_by or "channel", "period": period,
        "switches": report["summary"]["channel_switches"],
        "chart": {
            "labels": [str(r["label"]) for r in rows],
            "series": [
                {"label": _("Median first response (min)"), "values": [round((r["first_response"]["median_seconds"] or 0) / 60, 1) for r in rows]},
                {"label": _("Median resolution (h)"), "values": [round((r["resolution"]["median_seconds"] or 0) / 3600, 2) for r in rows]},
            ],
        },
        "quality_chart": {
            "labels": [str(r["label"]) for r in rows],
            "series": [
                {"label": _("First contact resolution %"), "values": [_rate(r["fcr"]["rate"]) for r in rows]},
                {"label": _("Web-chat abandonment %"), "values": [_rate(r["webchat_abandonment"]["rate"]) for r in rows]},
                {"label": _("First response SLA breached %"), "values": [_rate(r["sla"]["first_response"]["breach_rate"]) for r in rows]},
                {"label": _("Resolution SLA breached %"), "values": [_rate(r["sla"]["resolution"]["breach_rate"]) for r in rows]},
            ],
        },
    })


def _rate(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


# --- Maturity assessment ------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def maturity_list(request):
    _require_reports(request)
    form = MaturityAssessmentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            assessment = services.maturity_assessment_create(
                title=form.cleaned_data["title"], notes=form.cleaned_data["notes"], actor=request.user)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            return redirect("journeys:maturity_detail", pk=assessment.pk)
    history = maturity_history()
    language = get_language() or "en"
    chart = {
        "labels": [text(d, language) for d in DIMENSIONS],
        "series": [{"label": h["assessment"].title, "values": h["medians"]} for h in history[-4:]],
    }
    return render(request, "journeys/maturity_list.html", {
        "form": form, "history": list(reversed(history)), "dimensions": [text(d, language) for d in DIMENSIONS],
        "chart": chart, "has_scores": any(any(m is not None for m in h["medians"]) for h in history),
    })


@login_required
@require_http_methods(["GET", "POST"])
def maturity_detail(request, pk: int):
    _require_reports(request)
    assessment = MaturityAssessment.objects.filter(pk=pk).first()
    if assessment is None:
        raise Http404
    language = get_language() or "en"
    mine = {s.dimension: s for s in assessment.scores.filter(assessor=request.user)}
    form = MaturityScoreForm(request.POST or None, language=language, initial_scores=mine)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                for item in form.scores():
                    services.maturity_score_record(assessment=assessment, assessor=request.user, **item)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _("Your scores were saved."))
            return redirect("journeys:maturity_detail", pk=assessment.pk)
    result = maturity_result(assessment=assessment, language=language)
    if _wants_csv(request):
        return _csv(f"maturity-{assessment.pk}.csv",
                    ["dimension", *[a.email for a in result["assessors"]], "median", "target"],
                    [[r["label"], *r["scores"], r["median"], r["target"]] for r in result["rows"]])
    chart = {"labels": [r["label"] for r in result["rows"]], "series": [
        {"label": _("Median level"), "values": [r["median"] for r in result["rows"]]},
        {"label": _("Median target"), "values": [r["target"] for r in result["rows"]]},
    ]}
    return render(request, "journeys/maturity_detail.html", {
        "assessment": assessment, "result": result, "form": form, "chart": chart,
        "has_scores": any(r["median"] is not None for r in result["rows"]),
    })


@login_required
def dashboard_kpi_conversations(request):
    """Drill-down: the conversations behind one row of the KPI table (same period/grouping)."""
    _require_reports(request)
    form, window, group_by, period = _filters(request)
    key = request.GET.get("key", "")
    rows = kpis.conversations_behind(window=window, group_by=group_by or "channel", key=key, period=period,
                                     customers=_segment_customers(request, form))
    if _wants_csv(request):
        return _csv("kpi-conversations.csv", ["conversation", "first_customer_message", "first_agent_reply", "first_response_s",
                                              "resolutions", "resolution_s_total", "reopened"],
                    [[r["conversation"], r["first_in"], r["first_reply"], r["first_response_seconds"], r["resolutions"],
                      r["resolution_seconds"], r["reopened"]] for r in rows])
    for row in rows:
        row["frt"] = _seconds(row["first_response_seconds"])
        row["resolution"] = _seconds(row["resolution_seconds"])
    return render(request, "journeys/kpi_conversations.html", {
        "form": form, "window": window, "rows": rows, "key": key, "group_by": group_by or "channel",
    })


# --- NPS campaigns ------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def nps_campaigns(request):
    """Campaign list with progress, and the form that sends a new one to a segment."""
    _require_reports(request)
    form = NpsCampaignForm(request.POST or None, segments=selectors.report_segment_choices(viewer=request.user))
    if request.method == "POST" and form.is_valid():
        segment = selectors.report_segment_get(viewer=request.user, segment_id=form.cleaned_data["segment"])
        if segment is None:
            form.add_error("segment", _("Unknown segment."))
        else:
            try:
                campaign = nps.nps_campaign_create(name=form.cleaned_data["name"], segment=segment, actor=request.user,
                                                   question=form.cleaned_data["question"])
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, _("The campaign is being sent."))
                return redirect("journeys:nps_detail", pk=campaign.pk)
    campaigns = list(NpsCampaign.objects.select_related("segment").order_by("-created_at", "-id")[:50])
    return render(request, "journeys/nps_list.html", {"form": form, "campaigns": campaigns})


@login_required
def nps_detail(request, pk: int):
    _require_reports(request)
    campaign = NpsCampaign.objects.select_related("segment", "created_by").filter(pk=pk).first()
    if campaign is None:
        raise Http404
    summary = nps.nps_summary(campaign.surveys.all())
    skipped = list(campaign.surveys.filter(status=NpsSurvey.Status.SKIPPED).values("skip_reason")
                   .annotate(n=Count("id")).order_by("-n")[:10])
    return render(request, "journeys/nps_detail.html", {
        "campaign": campaign, "summary": summary, "skipped": skipped,
        "chart": {"labels": [_("Detractors (0–6)"), _("Passives (7–8)"), _("Promoters (9–10)")],
                  "series": [{"label": _("Answers"), "values": [summary["detractors"], summary["passives"], summary["promoters"]]}]},
    })


@login_required
def nps_progress(request, pk: int):
    """Progress of the send job, polled by static/journeys/nps.js."""
    _require_reports(request)
    campaign = NpsCampaign.objects.filter(pk=pk).first()
    if campaign is None:
        raise Http404
    return JsonResponse({"status": campaign.status, "total": campaign.total, "processed": campaign.processed,
                         "sent": campaign.sent, "skipped": campaign.skipped, "percent": campaign.progress_percent})
