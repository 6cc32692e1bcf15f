"""Reads for journeys, scoped to what the viewer may see."""
from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet

from accounts.models import User
from accounts.selectors import team_ids_for_user, user_is_supervisor_or_admin
from customers.models import Customer, Segment
from journeys.models import CsatResponse, CustomerEvent, StageChange


def reports_can_view(*, viewer: User) -> bool:
    """Dashboards and reports are for supervisors and admins."""
    return user_is_supervisor_or_admin(user=viewer)


def stage_history(*, customer: Customer) -> QuerySet[StageChange]:
    return StageChange.objects.filter(customer=customer).select_related("rule", "actor").order_by("changed_at", "id")


def customer_event_list(*, customer: Customer) -> QuerySet[CustomerEvent]:
    return CustomerEvent.objects.filter(customer=customer).order_by("-occurred_at", "-id")


def csat_response_list(
    *,
    viewer: User,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    rating: int | None = None,
    inbox_id: int | None = None,
    agent_id: int | None = None,
) -> QuerySet[CsatResponse]:
    """Supervisors and admins see every response; agents those of conversations they or their
    teams handled."""
    responses = CsatResponse.objects.select_related("survey", "survey__inbox", "survey__assignee", "survey__team")
    if not user_is_supervisor_or_admin(user=viewer):
        responses = responses.filter(Q(survey__assignee=viewer) | Q(survey__team_id__in=team_ids_for_user(user=viewer)))
    if since:
        responses = responses.filter(responded_at__gte=since)
    if until:
        responses = responses.filter(responded_at__lt=until)
    if rating:
        responses = responses.filter(rating=rating)
    if inbox_id:
        responses = responses.filter(survey__inbox_id=inbox_id)
    if agent_id:
        responses = responses.filter(survey__assignee_id=agent_id)
    return responses.order_by("-responded_at", "-id")


def report_segment_get(*, viewer: User, segment_id: int | str | None) -> Segment | None:
    """A saved segment the viewer may use as a report filter (None when unknown/not allowed)."""
    from customers.selectors import segment_list

    if not segment_id or not str(segment_id).isdigit():
        return None
    return segment_list(viewer=viewer).filter(pk=int(segment_id)).first()


def report_segment_customers(*, segment: Segment) -> QuerySet[Customer]:
    from customers.selectors import segment_customers

    return segment_customers(segment=segment)


def report_segment_choices(*, viewer: User) -> list[tuple[int, str]]:
    from customers.selectors import segment_list

    return list(segment_list(viewer=viewer).values_list("pk", "name"))
