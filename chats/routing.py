"""WebSocket routes: every chat of the user, or one chat (the contract's two endpoints)."""

from typing import Any

from django.urls import path, re_path

from chats.realtime.consumer import RealtimeConsumer

CLOSE_NO_SUCH_PATH = 4404


async def no_such_path(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Any other path: accepted, then closed with 4404, so that the client sees the code (Channels'
    router would raise, and the server answer the handshake with a 500)."""
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": CLOSE_NO_SUCH_PATH})
        elif message["type"] == "websocket.disconnect":
            return


# django-stubs types path() for views; Channels' URLRouter takes ASGI applications.
websocket_urlpatterns = [
    path("ws/", RealtimeConsumer.as_asgi()),  # type: ignore[arg-type]
    path("ws/chat/<int:chat_id>/", RealtimeConsumer.as_asgi()),  # type: ignore[arg-type]
    re_path(r"", no_such_path),  # type: ignore[arg-type]
]
