"""OpenAPI description of the `?token=` scheme accepted by the attachment file URL (imported in MediaConfig.ready)."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class AccessTokenQueryScheme(OpenApiAuthenticationExtension):
    target_class = "media.authentication.AccessTokenQueryAuthentication"
    name = "accessTokenQuery"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "query",
            "name": "token",
            "description": (
                "Addition to v1: the access JWT as ?token=, accepted on GET /api/attachments/{id}/file only, "
                "for <img src> where no Authorization header can be sent."
            ),
        }
