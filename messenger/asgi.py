"""ASGI entry point: HTTP goes to Django; WebSockets pass the origin check and the JWT check.

    http       -> Django
    websocket  -> OriginCheckMiddleware (ALLOWED_HOSTS + WEBSOCKET_ALLOWED_ORIGINS)
               -> JWTAuthMiddleware (?token=, SimpleJWT's AccessToken; sets scope["user"])
               -> /ws/ and /ws/chat/<id>/ (chats.routing)
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "messenger.settings")
# Django sets up its apps here, before anything below imports a model.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from accounts.ws_auth import JWTAuthMiddleware, OriginCheckMiddleware  # noqa: E402
from chats.routing import websocket_urlpatterns  # noqa: E402

websocket_app = OriginCheckMiddleware(JWTAuthMiddleware(URLRouter(websocket_urlpatterns)))

application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": websocket_app})
