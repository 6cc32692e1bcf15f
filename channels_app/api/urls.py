from django.urls import path

from channels_app.api import views

urlpatterns = [
    path("inboxes/", views.InboxListApi.as_view(), name="api-inbox-list"),
    path("inboxes/<int:pk>/", views.InboxDetailApi.as_view(), name="api-inbox-detail"),
    path("inboxes/<int:pk>/messages/", views.InboxMessageApi.as_view(), name="api-inbox-messages"),
    path("conversations/", views.ConversationListApi.as_view(), name="api-conversation-list"),
    path("conversations/<int:pk>/", views.ConversationDetailApi.as_view(), name="api-conversation-detail"),
    path("conversations/<int:pk>/messages/", views.ConversationMessageListApi.as_view(), name="api-conversation-messages"),
    path("conversations/<int:pk>/assign/", views.ConversationAssignApi.as_view(), name="api-conversation-assign"),
    path("conversations/<int:pk>/status/", views.ConversationStatusApi.as_view(), name="api-conversation-status"),
    path("conversations/<int:pk>/labels/", views.ConversationLabelsApi.as_view(), name="api-conversation-labels"),
    path("labels/", views.LabelListApi.as_view(), name="api-label-list"),
    path("canned-responses/", views.CannedResponseListApi.as_view(), name="api-canned-response-list"),
    path("canned-responses/<int:pk>/", views.CannedResponseDetailApi.as_view(), name="api-canned-response-detail"),
    path("canned-responses/<int:pk>/render/", views.CannedResponseRenderApi.as_view(),
         name="api-canned-response-render"),
    path("office-hours/", views.OfficeHoursListApi.as_view(), name="api-office-hours-list"),
    path("office-hours/<int:pk>/", views.OfficeHoursDetailApi.as_view(), name="api-office-hours-detail"),
    path("office-hours/<int:pk>/status/", views.OfficeHoursStatusApi.as_view(), name="api-office-hours-status"),
]
