"""Customers API: parse → service/selector → serialize, nothing else."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.http import Http404
from django.utils.http import urlencode
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from customers import selectors, services
from customers.api.serializers import (
    CustomerSerializer,
    CustomerWriteSerializer,
    EraseRequestSerializer,
    LookupQuerySerializer,
    MergeRequestSerializer,
    MergeResultSerializer,
    SegmentSerializer,
    TimelineEntrySerializer,
    TimelinePageSerializer,
    TimelineQuerySerializer,
    UndoResultSerializer,
)
from customers.models import Customer, CustomerMerge, IdentityOrigin, Segment
from customers.services import IdentityInput

API_SOURCE = "api"


class CustomerPermission(permissions.BasePermission):
    """Read needs view_customer; create add_customer; edit change_customer."""

    action_for_method = {
        "GET": "view",
        "HEAD": "view",
        "OPTIONS": "view",
        "POST": "add",
        "PATCH": "change",
        "PUT": "change",
    }

    def has_permission(self, request, view):
        action = getattr(view, "required_action", None) or self.action_for_method.get(request.method, "change")
        return bool(
            request.user and request.user.is_authenticated and request.user.has_perm(f"customers.{action}_customer")
        )


class SupervisorPermission(permissions.BasePermission):
    message = "Only supervisors and admins may do this."

    def has_permission(self, request, view):
        return bool(
            request.user and request.user.is_authenticated and selectors.customer_can_merge(viewer=request.user)
        )


def _customer_or_404(request, pk: int, *, include_inactive: bool = False, with_related: bool = True) -> Customer:
    try:
        return selectors.customer_get(
            viewer=request.user, customer_id=pk, include_inactive=include_inactive, with_related=with_related
        )
    except Customer.DoesNotExist:
        raise Http404 from None


def _fresh(request, customer: Customer) -> dict:
    return CustomerSerializer(selectors.customer_get(viewer=request.user, customer_id=customer.pk)).data


def _apply_fields(*, customer: Customer, data: dict, actor) -> Customer:
    fields = {
        k: data[k]
        for k in (
            "display_name",
            "language",
            "time_zone",
            "lifecycle_stage",
            "owner_agent",
            "owner_team",
            "attributes",
            "tags",
        )
        if k in data
    }
    if fields:
        services.customer_update(customer=customer, actor=actor, **fields)
    return customer


LIST_PARAMETERS = [
    OpenApiParameter("q", str, description="Name or any identity value: partial phone digits, email prefix."),
    OpenApiParameter("stage", str, enum=["reach", "acquisition", "conversion", "retention", "loyalty"]),
    OpenApiParameter("tag", str, description="Tag name (case-insensitive)."),
    OpenApiParameter("channel", str, description="Customers holding an identity of this kind, e.g. whatsapp, email."),
    OpenApiParameter("segment", int, description="Id of a saved segment."),
]


class CustomerListApi(generics.ListAPIView):
    serializer_class = CustomerSerializer
    permission_classes = [CustomerPermission]
    ordering = "-id"
    ordering_fields = ["id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Customer.objects.none()
        params = self.request.query_params
        segment = None
        if params.get("segment"):
            try:
                segment = selectors.segment_list(viewer=self.request.user).get(pk=int(params["segment"]))
            except (ValueError, Segment.DoesNotExist):
                raise exceptions.ValidationError({"segment": ["No such segment."]}) from None
        stage = params.get("stage", "")
        if stage and stage not in dict(Customer._meta.get_field("lifecycle_stage").choices):
            raise exceptions.ValidationError({"stage": [f"“{stage}” is not a lifecycle stage."]})
        return selectors.customer_list(
            viewer=self.request.user,
            q=params.get("q", ""),
            stage=stage,
            tag=params.get("tag", ""),
            channel=params.get("channel", ""),
            segment=segment,
        )

    @extend_schema(summary="List and search customers", parameters=LIST_PARAMETERS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Create a customer, or find the one these identities belong to",
        description="Identities are resolved like a channel would (normalised, deduplicated). "
        "201 when a new customer was created, 200 when an existing one was found and updated.",
        request=CustomerWriteSerializer,
        responses={201: CustomerSerializer, 200: CustomerSerializer},
    )
    def post(self, request):
        serializer = CustomerWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with transaction.atomic():
            result = services.customer_resolve(
                identities=[
                    IdentityInput(i["kind"], i["value"], verified=i["verified"], scope=i["scope"])
                    for i in data.get("identities", [])
                ],
                source=API_SOURCE,
                display_name=data.get("display_name", ""),
                asserted_by=IdentityOrigin.BUSINESS,
                strict=True,
            )
            _apply_fields(customer=result.customer, data=data, actor=request.user)
        return Response(
            _fresh(request, result.customer), status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        )


class CustomerDetailApi(APIView):
    permission_classes = [CustomerPermission]

    @extend_schema(
        summary="One customer with identities, tags, attributes and consent",
        description="A merged-away profile is still returned, with `merged_into` naming the survivor, so "
        "integrators holding an old id can follow it.",
        responses=CustomerSerializer,
    )
    def get(self, request, pk: int):
        return Response(CustomerSerializer(_customer_or_404(request, pk, include_inactive=True)).data)

    @extend_schema(
        summary="Update a customer",
        description="Attributes are merged key by key (null removes a key); tags replace the tag set; "
        "identities are added (a value held by another customer is refused: merge instead).",
        request=CustomerWriteSerializer,
        responses=CustomerSerializer,
    )
    def patch(self, request, pk: int):
        customer = _customer_or_404(request, pk)
        serializer = CustomerWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with transaction.atomic():
            _apply_fields(customer=customer, data=data, actor=request.user)
            for index, item in enumerate(data.get("identities", [])):
                try:
                    services.identity_add(
                        customer=customer,
                        kind=item["kind"],
                        value=item["value"],
                        scope=item["scope"],
                        verified=item["verified"],
                        source=API_SOURCE,
                    )
                except DjangoValidationError as exc:
                    raise exceptions.ValidationError({"identities": {str(index): exc.message_dict}}) from None
        return Response(_fresh(request, customer))


class CustomerLookupApi(APIView):
    permission_classes = [CustomerPermission]

    @extend_schema(
        summary="Find the customer holding an identity",
        parameters=[LookupQuerySerializer],
        responses={200: CustomerSerializer, 404: OpenApiResponse(description="No customer holds this identity.")},
    )
    def get(self, request):
        query = LookupQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        customer = selectors.customer_lookup(viewer=request.user, **query.validated_data)
        if customer is None:
            raise exceptions.NotFound("No customer holds this identity.")
        return Response(CustomerSerializer(customer).data)


class CustomerMergeApi(APIView):
    permission_classes = [CustomerPermission, SupervisorPermission]
    required_action = "change"

    @extend_schema(
        summary="Merge another customer into this one (supervisors and admins)",
        request=MergeRequestSerializer,
        responses={200: MergeResultSerializer},
    )
    def post(self, request, pk: int):
        survivor = _customer_or_404(request, pk)
        serializer = MergeRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            merged = selectors.customer_get(viewer=request.user, customer_id=serializer.validated_data["source"])
        except Customer.DoesNotExist:
            raise exceptions.ValidationError(
                {"source": ["No such customer, or it was already merged or erased."]}
            ) from None
        merge = services.customer_merge(
            survivor=survivor,
            merged=merged,
            actor=request.user,
            reason=serializer.validated_data["reason"],
            request=request,
        )
        return Response({"merge_id": merge.pk, "survivor": _fresh(request, survivor)})


class MergeUndoApi(APIView):
    permission_classes = [CustomerPermission, SupervisorPermission]
    required_action = "change"

    @extend_schema(summary="Undo a merge (supervisors and admins)", request=None, responses={200: UndoResultSerializer})
    def post(self, request, pk: int):
        try:
            merge = selectors.customer_merge_get(viewer=request.user, merge_id=pk)
        except CustomerMerge.DoesNotExist:
            raise Http404 from None
        services.customer_unmerge(merge=merge, actor=request.user, request=request)
        return Response(
            {
                "merge_id": merge.pk,
                "survivor": _fresh(request, merge.survivor),
                "restored": _fresh(request, merge.merged),
            }
        )


class CustomerTimelineApi(APIView):
    permission_classes = [CustomerPermission]

    @extend_schema(
        summary="The customer's 360° timeline, newest first",
        parameters=[TimelineQuerySerializer],
        responses=TimelinePageSerializer,
    )
    def get(self, request, pk: int):
        customer = _customer_or_404(request, pk, with_related=False)
        query = TimelineQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        page = selectors.customer_timeline(
            customer=customer,
            cursor=params.get("cursor") or None,
            channel=params.get("channel", ""),
            kind=params.get("kind", ""),
            page_size=params["page_size"],
        )
        next_url = None
        if page.next_cursor:
            keep = {k: v for k, v in request.query_params.items() if k != "cursor"}
            next_url = request.build_absolute_uri(f"{request.path}?{urlencode({**keep, 'cursor': page.next_cursor})}")
        return Response(
            {
                "results": TimelineEntrySerializer(page.entries, many=True).data,
                "next_cursor": page.next_cursor,
                "next": next_url,
            }
        )


class CustomerExportApi(APIView):
    permission_classes = [CustomerPermission, SupervisorPermission]

    @extend_schema(summary="Everything stored about one customer (privacy export; audited)", responses={200: dict})
    def get(self, request, pk: int):
        customer = _customer_or_404(request, pk)
        return Response(services.customer_export(customer=customer, actor=request.user, request=request))


class CustomerEraseApi(APIView):
    permission_classes = [CustomerPermission, SupervisorPermission]
    required_action = "change"

    @extend_schema(
        summary="Erase a customer's personal data (supervisors and admins; audited)",
        request=EraseRequestSerializer,
        responses={204: None},
    )
    def post(self, request, pk: int):
        customer = _customer_or_404(request, pk)
        serializer = EraseRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.customer_erase(customer=customer, actor=request.user, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SegmentListApi(generics.ListAPIView):
    serializer_class = SegmentSerializer
    ordering = "name"
    ordering_fields = ["name", "id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Segment.objects.none()
        return selectors.segment_list(viewer=self.request.user)

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        # Live counts for the whole page in one query.
        ids = [row["id"] for row in response.data["results"]]
        counts = selectors.segment_counts(viewer=request.user, segments=list(self.get_queryset().filter(pk__in=ids)))
        for row in response.data["results"]:
            row["customer_count"] = counts[row["id"]]
        return response

    @extend_schema(summary="Saved segments with live customer counts")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(summary="Save a segment", request=SegmentSerializer, responses={201: SegmentSerializer})
    def post(self, request):
        if not request.user.has_perm("customers.add_segment"):
            raise exceptions.PermissionDenied("Only supervisors and admins may save segments.")
        serializer = SegmentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if Segment.objects.filter(name__iexact=serializer.validated_data["name"].strip()).exists():
            raise exceptions.ValidationError({"name": ["A segment with this name already exists."]})
        segment = services.segment_create(
            name=serializer.validated_data["name"],
            description=serializer.validated_data.get("description", ""),
            filters=serializer.validated_data.get("filters", {}),
            actor=request.user,
        )
        data = SegmentSerializer(segment).data
        data["customer_count"] = selectors.segment_customer_count(viewer=request.user, segment=segment)
        return Response(data, status=status.HTTP_201_CREATED)


class SegmentCustomerListApi(generics.ListAPIView):
    serializer_class = CustomerSerializer
    permission_classes = [CustomerPermission]
    ordering = "-id"
    ordering_fields = ["id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Customer.objects.none()
        try:
            segment = selectors.segment_list(viewer=self.request.user).get(pk=self.kwargs["pk"])
        except Segment.DoesNotExist:
            raise Http404 from None
        return selectors.customer_list(viewer=self.request.user, segment=segment)

    @extend_schema(summary="Customers in a segment")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
