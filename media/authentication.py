"""`?token=<access JWT>` for the attachment file URL only.

Browsers send no Authorization header for <img src>; the access token in the query string
lets a page show an image directly. It is the same short-lived access token as in the header
(validated by SimpleJWT: signature, expiry, token type "access", active user; and of the
user's current session generation, accounts.sessions), so it grants
nothing the header would not. Only AttachmentFileView lists this class.
"""

from typing import Any

from rest_framework.request import Request

from accounts.sessions import SessionJWTAuthentication


class AccessTokenQueryAuthentication(SessionJWTAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        raw = request.query_params.get("token")
        if not raw:
            return None
        validated = self.get_validated_token(raw.encode())
        return self.get_user(validated), validated
