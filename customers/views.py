"""Agent UI for customers: list, profile, merge/unmerge, duplicates, import, privacy.

Views parse the request, call a selector or a service and render; nothing else.
"""

from __future__ import annotations

import csv
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.models import AuditEntry
from accounts.services import audit_record
from customers import duplicates, importer, selectors, services
from customers.forms import (
    AttributesForm,
    ConsentForm,
    CustomerCreateForm,
    CustomerSearchForm,
    EraseConfirmForm,
    IdentityForm,
    ImportMappingForm,
    ImportUploadForm,
    MergeForm,
    MergeSourceForm,
    NoteForm,
    ProfileForm,
    StageForm,
    TagsForm,
)
from customers.models import (
    AttributeDefinition,
    Customer,
    CustomerMerge,
    Identity,
    IdentityOrigin,
    ImportJob,
    MergeSuggestion,
    TimelineKind,
)
from customers.services import IdentityInput
from cxplatform.paginator import CappedPaginator

LIST_PAGE_SIZE = 25
LIST_COUNT_CAP = 500  # customers counted past the page's start; beyond: "more than"


def _require_view(request) -> None:
    if not selectors.customer_can_view(viewer=request.user):
        raise PermissionDenied


def _require_supervisor(request) -> None:
    if not selectors.customer_can_merge(viewer=request.user):
        raise PermissionDenied


def _customer(request, pk: int, *, include_inactive: bool = False) -> Customer:
    _require_view(request)
    try:
        return selectors.customer_get(viewer=request.user, customer_id=pk, include_inactive=include_inactive)
    except Customer.DoesNotExist:
        raise Http404 from None


def _errors(request, exc: ValidationError) -> None:
    for message in exc.messages:
        messages.error(request, message)


@login_required
@require_GET
def customer_list(request):
    _require_view(request)
    form = CustomerSearchForm(request.GET or None, segments=selectors.segment_list(viewer=request.user))
    filters = form.cleaned_data if form.is_valid() else {}
    customers = selectors.customer_list(
        viewer=request.user,
        q=filters.get("q", ""),
        stage=filters.get("stage", ""),
        tag=filters.get("tag", ""),
        channel=filters.get("channel", ""),
        segment=filters.get("segment"),
        for_rows=True,
    ).order_by("-id")
    page = CappedPaginator(customers, LIST_PAGE_SIZE, cap=LIST_COUNT_CAP).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "customers/list.html",
        {
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "can_merge": selectors.customer_can_merge(viewer=request.user),
        },
    )


@login_required
def customer_create(request):
    """An agent records a customer (walk-in, phone call); known phones/emails find the
    existing profile instead of creating a duplicate."""
    _require_view(request)
    if not request.user.has_perm("customers.add_customer"):
        raise PermissionDenied
    form = CustomerCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        identities = [IdentityInput(kind, data[kind]) for kind in ("phone", "email") if data[kind].strip()]
        try:
            result = services.customer_resolve(
                identities=identities,
                source="agent",
                display_name=data["display_name"],
                asserted_by=IdentityOrigin.BUSINESS,
                strict=True,
            )
        except ValidationError as exc:
            for message in exc.messages:
                form.add_error(None, message)
        else:
            if result.created:
                messages.success(request, _("Customer created."))
            else:
                messages.info(request, _("This customer was already known; here is their profile."))
            return redirect("customers:detail", pk=result.customer.pk)
    return render(request, "customers/create.html", {"form": form})


@login_required
@require_GET
def customer_detail(request, pk: int):
    customer = _customer(request, pk, include_inactive=True)
    if customer.merged_into_id and not customer.is_erased:
        messages.info(request, _("This profile was merged into customer #%(id)s.") % {"id": customer.merged_into_id})
    timeline_form = {"channel": request.GET.get("channel", ""), "kind": request.GET.get("kind", "")}
    try:
        timeline = selectors.customer_timeline(
            customer=customer,
            cursor=request.GET.get("cursor") or None,
            channel=timeline_form["channel"],
            kind=timeline_form["kind"],
            page_size=30,
        )
    except ValidationError:
        timeline = selectors.customer_timeline(
            customer=customer, channel=timeline_form["channel"], kind=timeline_form["kind"], page_size=30
        )
    definitions = list(AttributeDefinition.objects.order_by("label"))
    context = {
        "customer": customer,
        "identities": list(customer.identities.all()),
        "consents": list(customer.consents.all()),
        "notes": customer.notes.select_related("author")[:50],
        "timeline": timeline,
        "timeline_channels": selectors.timeline_channels(customer=customer),
        "timeline_kinds": TimelineKind.choices,
        "timeline_filter": timeline_form,
        "attribute_rows": [
            ({d.key: d.label for d in definitions}.get(key, key), value)
            for key, value in sorted(customer.attributes.items())
        ],
        "attributes_form": AttributesForm(definitions=definitions, initial_values=customer.attributes),
        "profile_form": ProfileForm(
            initial={
                "display_name": customer.display_name,
                "language": customer.language,
                "time_zone": customer.time_zone,
            }
        ),
        "tags_form": TagsForm(initial={"tags": ", ".join(t.name for t in customer.tags.all())}),
        "stage_form": StageForm(initial={"lifecycle_stage": customer.lifecycle_stage}),
        "note_form": NoteForm(),
        "identity_form": IdentityForm(),
        "consent_form": ConsentForm(),
        "merge_source_form": MergeSourceForm(),
        "suggestions": selectors.merge_suggestion_list(viewer=request.user, customer=customer),
        "merges": selectors.customer_merge_list(viewer=request.user, customer=customer),
        "can_merge": selectors.customer_can_merge(viewer=request.user),
        "is_live": customer.is_active_profile,
    }
    return render(request, "customers/detail.html", context)


def _live_customer_for_edit(request, pk: int) -> Customer:
    customer = _customer(request, pk)
    if not request.user.has_perm("customers.change_customer"):
        raise PermissionDenied
    return customer


@login_required
@require_POST
def customer_edit(request, pk: int, part: str):
    """One small form per part of the profile (name, tags, stage, attributes)."""
    customer = _live_customer_for_edit(request, pk)
    try:
        if part == "profile":
            form = ProfileForm(request.POST)
            if form.is_valid():
                services.customer_update(customer=customer, actor=request.user, **form.cleaned_data)
        elif part == "tags":
            form = TagsForm(request.POST)
            if form.is_valid():
                services.customer_update(customer=customer, actor=request.user, tags=form.cleaned_names())
        elif part == "stage":
            form = StageForm(request.POST)
            if form.is_valid():
                services.customer_update(
                    customer=customer, actor=request.user, lifecycle_stage=form.cleaned_data["lifecycle_stage"]
                )
        elif part == "attributes":
            form = AttributesForm(request.POST, definitions=list(AttributeDefinition.objects.all()), initial_values={})
            if form.is_valid():
                services.customer_update(customer=customer, actor=request.user, attributes=form.attribute_values())
        else:
            raise Http404
        if form.is_valid():
            messages.success(request, _("Saved."))
        else:
            for field, errors in form.errors.items():
                label = form.fields[field].label if field in form.fields else field
                messages.error(request, f"{label}: {' '.join(errors)}")
    except ValidationError as exc:
        _errors(request, exc)
    return redirect("customers:detail", pk=customer.pk)


@login_required
@require_POST
def note_add(request, pk: int):
    customer = _live_customer_for_edit(request, pk)
    form = NoteForm(request.POST)
    if form.is_valid():
        services.note_add(customer=customer, author=request.user, body=form.cleaned_data["body"])
        messages.success(request, _("Note added."))
    else:
        messages.error(request, _("Write something first."))
    return redirect("customers:detail", pk=customer.pk)


@login_required
@require_POST
def identity_add(request, pk: int):
    customer = _live_customer_for_edit(request, pk)
    form = IdentityForm(request.POST)
    if form.is_valid():
        try:
            services.identity_add(customer=customer, source="agent", **form.cleaned_data)
            messages.success(request, _("Identity added."))
        except ValidationError as exc:
            _errors(request, exc)
    else:
        messages.error(request, _("Choose a kind and enter a value."))
    return redirect("customers:detail", pk=customer.pk)


@login_required
@require_POST
def identity_remove(request, pk: int, identity_id: int):
    customer = _live_customer_for_edit(request, pk)
    if not request.user.has_perm("customers.delete_identity"):
        raise PermissionDenied
    try:
        identity = customer.identities.get(pk=identity_id)
    except Identity.DoesNotExist:
        raise Http404 from None
    services.identity_remove(identity=identity)
    messages.success(request, _("Identity removed."))
    return redirect("customers:detail", pk=customer.pk)


@login_required
@require_POST
def consent_record(request, pk: int):
    customer = _live_customer_for_edit(request, pk)
    form = ConsentForm(request.POST)
    if form.is_valid():
        try:
            services.consent_record(customer=customer, **form.cleaned_data)
            messages.success(request, _("Consent recorded."))
        except ValidationError as exc:
            _errors(request, exc)
    else:
        messages.error(request, _("Give the channel, the choice and where it was given."))
    return redirect("customers:detail", pk=customer.pk)


@login_required
@require_POST
def segment_save(request):
    """Save the list's current filters as a segment (supervisors)."""
    if not request.user.has_perm("customers.add_segment"):
        raise PermissionDenied
    form = CustomerSearchForm(request.POST, segments=selectors.segment_list(viewer=request.user))
    name = (request.POST.get("name") or "").strip()
    if not form.is_valid() or not name:
        messages.error(request, _("Give the segment a name."))
        return redirect("customers:list")
    data = form.cleaned_data
    filters = {k: data[k] for k in ("q", "stage", "channel") if data.get(k)}
    if data.get("tag"):
        filters["tags"] = [data["tag"]]
    try:
        segment = services.segment_create(name=name, filters=filters, actor=request.user)
    except ValidationError as exc:
        _errors(request, exc)
        return redirect("customers:list")
    messages.success(request, _("Segment “%(name)s” saved.") % {"name": segment.name})
    return redirect(f"{reverse('customers:list')}?segment={segment.pk}")


class _Echo:
    def write(self, value):
        return value


@login_required
@require_GET
def customer_list_csv(request):
    """The current list (search, filters or a segment) as CSV; supervisors only, audited."""
    _require_supervisor(request)
    form = CustomerSearchForm(request.GET or None, segments=selectors.segment_list(viewer=request.user))
    filters = form.cleaned_data if form.is_valid() else {}
    customers = selectors.customer_list(
        viewer=request.user,
        q=filters.get("q", ""),
        stage=filters.get("stage", ""),
        tag=filters.get("tag", ""),
        channel=filters.get("channel", ""),
        segment=filters.get("segment"),
    ).order_by("id")
    audit_record(
        action=AuditEntry.Action.DATA_EXPORTED,
        actor=request.user,
        request=request,
        data={"what": "customer list", "filters": {k: str(v) for k, v in filters.items() if v}},
    )
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(["id", "name", "stage", "phones", "emails", "tags", "last_contacted_at"])
        for customer in customers.iterator(chunk_size=500):
            identities = list(customer.identities.all())
            yield writer.writerow(
                [
                    customer.pk,
                    _csv_safe(customer.display_name),
                    customer.lifecycle_stage,
                    " ".join(i.value for i in identities if i.kind == "phone"),
                    _csv_safe(" ".join(i.value for i in identities if i.kind == "email")),
                    _csv_safe(", ".join(t.name for t in customer.tags.all())),
                    customer.last_contacted_at.isoformat() if customer.last_contacted_at else "",
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="customers.csv"'
    return response


def _csv_safe(value: str) -> str:
    # Spreadsheets execute cells starting with = + - @ (CSV injection); quote them as text.
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


# --- Merge --------------------------------------------------------------------------------


@login_required
def merge_preview(request, pk: int):
    """GET: what would move and which conflicts the survivor wins; POST: merge."""
    _require_supervisor(request)
    survivor = _customer(request, pk)
    source_form = MergeSourceForm(request.GET if request.method == "GET" else request.POST)
    if not source_form.is_valid():
        messages.error(request, _("Enter the id of the customer to merge into this one."))
        return redirect("customers:detail", pk=survivor.pk)
    try:
        merged = selectors.customer_get(viewer=request.user, customer_id=source_form.cleaned_data["source"])
    except Customer.DoesNotExist:
        messages.error(request, _("No live customer has that id."))
        return redirect("customers:detail", pk=survivor.pk)
    form = MergeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            merge = services.customer_merge(
                survivor=survivor,
                merged=merged,
                actor=request.user,
                reason=form.cleaned_data["reason"],
                request=request,
            )
        except ValidationError as exc:
            _errors(request, exc)
            return redirect("customers:detail", pk=survivor.pk)
        messages.success(
            request, _("Customer #%(m)s was merged into this profile. You can undo it below.") % {"m": merge.merged_id}
        )
        return redirect("customers:detail", pk=survivor.pk)
    preview = selectors.merge_preview(survivor=survivor, merged=merged)
    return render(request, "customers/merge_preview.html", {"preview": preview, "form": form})


@login_required
def unmerge(request, merge_id: int):
    _require_supervisor(request)
    try:
        merge = selectors.customer_merge_get(viewer=request.user, merge_id=merge_id)
    except CustomerMerge.DoesNotExist:
        raise Http404 from None
    if request.method == "POST":
        try:
            services.customer_unmerge(merge=merge, actor=request.user, request=request)
            messages.success(
                request, _("The merge was undone: customer #%(id)s is its own profile again.") % {"id": merge.merged_id}
            )
        except ValidationError as exc:
            _errors(request, exc)
        return redirect("customers:detail", pk=merge.survivor_id)
    moved = [(item["model"], len(item["ids"])) for item in merge.snapshot.get("moved", [])]
    return render(request, "customers/unmerge_confirm.html", {"merge": merge, "moved": moved})


@login_required
@require_POST
def suggestion_decide(request, suggestion_id: int, decision: str):
    _require_supervisor(request)
    try:
        suggestion = selectors.merge_suggestion_list(viewer=request.user).get(pk=suggestion_id)
    except MergeSuggestion.DoesNotExist:
        raise Http404 from None
    try:
        if decision == "dismiss":
            services.merge_suggestion_dismiss(suggestion=suggestion, actor=request.user)
            messages.success(request, _("Suggestion dismissed."))
            next_url = request.POST.get("next", "")
            if not url_has_allowed_host_and_scheme(
                next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
            ):
                next_url = reverse("customers:duplicates")
            return redirect(next_url)
        if decision != "accept":
            raise Http404
        merge = services.merge_suggestion_accept(suggestion=suggestion, actor=request.user, request=request)
        messages.success(request, _("Merged. You can undo it on the profile."))
        return redirect("customers:detail", pk=merge.survivor_id)
    except ValidationError as exc:
        _errors(request, exc)
        return redirect("customers:duplicates")


@login_required
@require_GET
def duplicate_list(request):
    _require_view(request)
    suggestions = selectors.merge_suggestion_list(viewer=request.user)[:100]
    fuzzy = duplicates.duplicates_find(limit=50) if request.GET.get("scan") == "1" else None
    return render(
        request,
        "customers/duplicates.html",
        {"suggestions": suggestions, "fuzzy": fuzzy, "can_merge": selectors.customer_can_merge(viewer=request.user)},
    )


# --- Privacy -------------------------------------------------------------------------------


@login_required
@require_GET
def customer_export(request, pk: int):
    _require_supervisor(request)
    customer = _customer(request, pk, include_inactive=True)
    data = services.customer_export(customer=customer, actor=request.user, request=request)
    response = HttpResponse(json.dumps(data, indent=2, ensure_ascii=False), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="customer-{customer.pk}.json"'
    return response


@login_required
def customer_erase(request, pk: int):
    """A second, explicit step: the confirm page, then the POST with the box ticked."""
    _require_supervisor(request)
    customer = _customer(request, pk)
    form = EraseConfirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.customer_erase(customer=customer, actor=request.user, request=request)
        except ValidationError as exc:
            _errors(request, exc)
            return redirect("customers:detail", pk=customer.pk)
        messages.success(request, _("The customer's personal data was erased."))
        return redirect("customers:list")
    return render(request, "customers/erase_confirm.html", {"customer": customer, "form": form})


# --- Import -------------------------------------------------------------------------------


def _require_import(request) -> None:
    if not request.user.has_perm("customers.add_importjob"):
        raise PermissionDenied


def _job(request, job_id: int) -> ImportJob:
    _require_import(request)
    try:
        return selectors.import_job_list(viewer=request.user).get(pk=job_id)
    except ImportJob.DoesNotExist:
        raise Http404 from None


@login_required
def import_upload(request):
    _require_import(request)
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = importer.import_job_create(file=form.cleaned_data["file"], actor=request.user)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            return redirect("customers:import_mapping", job_id=job.pk)
    jobs = selectors.import_job_list(viewer=request.user)[:20]
    return render(request, "customers/import_upload.html", {"form": form, "jobs": jobs})


@login_required
def import_mapping(request, job_id: int):
    job = _job(request, job_id)
    if not job.file:
        return redirect("customers:import_progress", job_id=job.pk)
    headers, rows = importer.csv_preview(job=job)
    checked = job.dry_run and job.status == ImportJob.Status.DONE  # the dry run looked right: now for real
    form = ImportMappingForm(
        request.POST or None,
        headers=headers,
        choices=importer.target_choices(),
        initial_mapping=job.mapping,
        initial={"dry_run": not checked},
    )
    if request.method == "POST" and form.is_valid():
        try:
            importer.import_job_start(job=job, mapping=form.mapping(), dry_run=form.cleaned_data["dry_run"])
        except ValidationError as exc:
            for error in exc.messages:
                form.add_error(None, error)
        else:
            return redirect("customers:import_progress", job_id=job.pk)
    columns = [
        (form[f"col_{index}"], [row[index] if index < len(row) else "" for row in rows])
        for index in range(len(headers))
    ]
    return render(request, "customers/import_mapping.html", {"job": job, "form": form, "columns": columns})


@login_required
@require_GET
def import_progress(request, job_id: int):
    job = _job(request, job_id)
    return render(request, "customers/import_progress.html", {"job": job})


@login_required
@require_GET
def import_status(request, job_id: int):
    job = _job(request, job_id)
    return JsonResponse(
        {
            "status": job.status,
            "status_label": job.get_status_display(),
            "dry_run": job.dry_run,
            "total": job.total_rows,
            "processed": job.processed_rows,
            "created": job.created_rows,
            "updated": job.updated_rows,
            "failed": job.failed_rows,
            "percent": job.percent,
            "errors": job.errors[:50],
        }
    )
