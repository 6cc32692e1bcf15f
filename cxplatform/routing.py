"""Websocket URL routes of every app, mounted by cxplatform.asgi."""
from channels_app.routing import websocket_urlpatterns as channels_app_routes

websocket_urlpatterns = [*channels_app_routes]
