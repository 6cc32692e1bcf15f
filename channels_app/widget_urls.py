from django.urls import path

from channels_app import widget_views

app_name = "widget"
urlpatterns = [
    path("embed.js", widget_views.embed_js, name="embed"),
    path("demo/", widget_views.widget_demo, name="demo"),
    path("frame/<uuid:inbox_uuid>/", widget_views.widget_frame, name="frame"),
    path("api/<uuid:inbox_uuid>/messages/", widget_views.visitor_messages, name="messages"),
    path("api/<uuid:inbox_uuid>/contact/", widget_views.visitor_contact, name="contact"),
    path("api/<uuid:inbox_uuid>/rating/", widget_views.visitor_rating, name="rating"),
]
