from django.urls import path

from customers.api import views

urlpatterns = [
    path("customers/", views.CustomerListApi.as_view(), name="api-customer-list"),
    path("customers/lookup/", views.CustomerLookupApi.as_view(), name="api-customer-lookup"),
    path("customers/<int:pk>/", views.CustomerDetailApi.as_view(), name="api-customer-detail"),
    path("customers/<int:pk>/merge/", views.CustomerMergeApi.as_view(), name="api-customer-merge"),
    path("customers/<int:pk>/timeline/", views.CustomerTimelineApi.as_view(), name="api-customer-timeline"),
    path("customers/<int:pk>/export/", views.CustomerExportApi.as_view(), name="api-customer-export"),
    path("customers/<int:pk>/erase/", views.CustomerEraseApi.as_view(), name="api-customer-erase"),
    path("merges/<int:pk>/undo/", views.MergeUndoApi.as_view(), name="api-merge-undo"),
    path("segments/", views.SegmentListApi.as_view(), name="api-segment-list"),
    path("segments/<int:pk>/customers/", views.SegmentCustomerListApi.as_view(), name="api-segment-customers"),
]
