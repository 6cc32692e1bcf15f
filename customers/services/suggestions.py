"""Merge suggestions: evidence that two profiles may be one person."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from customers import events
from customers.models import (
    Customer,
    CustomerMerge,
    MergeSuggestion,
)
from customers.services.merging import customer_merge

# --- Merge suggestions --------------------------------------------------------------------


def merge_suggestion_record(
    *, first: Customer, second: Customer, score: float, evidence: dict
) -> MergeSuggestion | None:
    """Record (or strengthen) the open suggestion for this pair; a dismissed pair stays quiet."""
    if first.pk == second.pk:
        return None
    a_id, b_id = sorted((first.pk, second.pk))
    if MergeSuggestion.objects.filter(a_id=a_id, b_id=b_id, status=MergeSuggestion.Status.DISMISSED).exists():
        return None
    suggestion = (
        MergeSuggestion.objects.select_for_update()
        .filter(a_id=a_id, b_id=b_id, status=MergeSuggestion.Status.OPEN)
        .first()
    )
    if suggestion is None:
        suggestion = MergeSuggestion.objects.create(a_id=a_id, b_id=b_id, score=round(score, 3), evidence=[evidence])
        transaction.on_commit(
            lambda: events.merge_suggested.send(
                sender=MergeSuggestion, event=events.MERGE_SUGGESTED, suggestion=suggestion
            )
        )
        return suggestion
    if evidence not in suggestion.evidence:
        suggestion.evidence = [*suggestion.evidence, evidence]
    # Independent pieces of evidence add up, but never to certainty.
    suggestion.score = round(min(0.99, max(suggestion.score, score) + (0.05 if len(suggestion.evidence) > 1 else 0)), 3)
    suggestion.save(update_fields=["evidence", "score"])
    return suggestion


@transaction.atomic
def merge_suggestion_dismiss(*, suggestion: MergeSuggestion, actor: User) -> MergeSuggestion:
    if suggestion.status != MergeSuggestion.Status.OPEN:
        raise ValidationError(_("This suggestion has already been decided."))
    suggestion.status = MergeSuggestion.Status.DISMISSED
    suggestion.decided_by = actor
    suggestion.decided_at = timezone.now()
    suggestion.save(update_fields=["status", "decided_by", "decided_at"])
    return suggestion


@transaction.atomic
def merge_suggestion_accept(
    *, suggestion: MergeSuggestion, actor: User, survivor: Customer | None = None, request=None
) -> CustomerMerge:
    """Merge the pair; the older profile survives unless the supervisor picked one."""
    if suggestion.status != MergeSuggestion.Status.OPEN:
        raise ValidationError(_("This suggestion has already been decided."))
    survivor = survivor or suggestion.a
    if survivor.pk not in (suggestion.a_id, suggestion.b_id):
        raise ValidationError(_("The survivor must be one of the two customers."))
    merged = suggestion.b if survivor.pk == suggestion.a_id else suggestion.a
    return customer_merge(
        survivor=survivor, merged=merged, actor=actor, reason=_("Accepted merge suggestion"), request=request
    )
