from django.urls import path

from customers import views

app_name = "customers"
urlpatterns = [
    path("", views.customer_list, name="list"),
    path("new/", views.customer_create, name="create"),
    path("export.csv", views.customer_list_csv, name="list_csv"),
    path("segments/", views.segment_save, name="segment_save"),
    path("duplicates/", views.duplicate_list, name="duplicates"),
    path("import/", views.import_upload, name="import_upload"),
    path("import/<int:job_id>/", views.import_mapping, name="import_mapping"),
    path("import/<int:job_id>/progress/", views.import_progress, name="import_progress"),
    path("import/<int:job_id>/status.json", views.import_status, name="import_status"),
    path("merges/<int:merge_id>/undo/", views.unmerge, name="unmerge"),
    path("suggestions/<int:suggestion_id>/<str:decision>/", views.suggestion_decide, name="suggestion_decide"),
    path("<int:pk>/", views.customer_detail, name="detail"),
    path("<int:pk>/edit/<str:part>/", views.customer_edit, name="edit"),
    path("<int:pk>/notes/", views.note_add, name="note_add"),
    path("<int:pk>/identities/", views.identity_add, name="identity_add"),
    path("<int:pk>/identities/<int:identity_id>/remove/", views.identity_remove, name="identity_remove"),
    path("<int:pk>/consent/", views.consent_record, name="consent_record"),
    path("<int:pk>/merge/", views.merge_preview, name="merge"),
    path("<int:pk>/export.json", views.customer_export, name="export"),
    path("<int:pk>/erase/", views.customer_erase, name="erase"),
]
