from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.admin import throttled_admin_login
from messenger.client_config import ClientConfigView
from messenger.health import healthz
from messenger.ws_docs import asyncapi_yaml, ws_docs

urlpatterns = [
    # Before the admin's own: its login, rate-limited like the API's.
    path("admin/login/", throttled_admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    # The WebSocket protocol: docs/asyncapi.yaml, and a page rendered from it.
    path("api/asyncapi.yaml", asyncapi_yaml, name="asyncapi"),
    path("api/ws-docs/", ws_docs, name="ws-docs"),
    re_path(r"^api/config/?$", ClientConfigView.as_view(), name="client-config"),
    path("api/", include("accounts.urls")),
    path("api/", include("chats.urls")),
    path("api/", include("media.urls")),
]
