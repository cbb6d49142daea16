"""WebSocket routes: every chat of the user, or one chat (the contract's two endpoints)."""

from django.urls import path

from chats.realtime.consumer import RealtimeConsumer

# django-stubs types path() for views; Channels' URLRouter takes ASGI applications.
websocket_urlpatterns = [
    path("ws/", RealtimeConsumer.as_asgi()),  # type: ignore[arg-type]
    path("ws/chat/<int:chat_id>/", RealtimeConsumer.as_asgi()),  # type: ignore[arg-type]
]
