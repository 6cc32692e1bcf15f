from django.urls import path

from channels_app import consumers

websocket_urlpatterns = [
    path("ws/agent/", consumers.AgentConsumer.as_asgi()),
    path("ws/widget/<uuid:inbox>/<str:token>/", consumers.VisitorConsumer.as_asgi()),
]
