from django.urls import path

from channels_app import views

app_name = "channels_app"
urlpatterns = [
    path("", views.conversation_list, name="list"),
    path("webchat/", views.webchat_snippets, name="webchat_snippets"),
    path("search/", views.search, name="search"),
    path("media/<str:token>/", views.media_signed, name="media_signed"),
    path("<int:pk>/", views.conversation_detail, name="detail"),
    path("<int:pk>/messages/", views.conversation_messages_fragment, name="messages_fragment"),
    path("<int:pk>/reply/", views.conversation_reply, name="reply"),
    path("<int:pk>/assign-me/", views.conversation_assign_me, name="assign_me"),
    path("<int:pk>/status/", views.conversation_status, name="status"),
    path("<int:pk>/priority/", views.conversation_priority, name="priority"),
    path("<int:pk>/team/", views.conversation_team, name="team"),
    path("<int:pk>/labels/", views.conversation_label, name="label"),
    path("<int:pk>/read/", views.conversation_read, name="read"),
    path("<int:pk>/canned/", views.canned_responses, name="canned"),
    path("<int:pk>/mentions/", views.mention_candidates, name="mentions"),
    path("<int:pk>/attachments/<uuid:message_uuid>/<int:index>/", views.attachment_download, name="attachment"),
]
