"""Headers of the client's pages, which WhiteNoise serves from client/renderer/ (`/` included).

Django's middleware never sees those answers (WhiteNoise answers first), so X-Frame-Options and
the Content-Security-Policy are added here, to every file WhiteNoise serves (the SecurityMiddleware,
above WhiteNoise, still adds nosniff and Referrer-Policy). The policy is
client/renderer/index.html's <meta> policy with `frame-ancestors 'none'`, which a <meta> cannot
carry; the <meta> stays for the desktop app, whose file:// page comes with no headers
(tests/test_security_headers.py keeps the two equal).
"""

from typing import Any

# The renderer's own scripts and styles only, no inline code; images from the server, blob: and
# data: (previews); connect-src names the schemes because the desktop app may talk to any server.
CLIENT_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self' http: https: ws: wss:; object-src 'none'; base-uri 'none'; form-action 'none'"
)
CLIENT_HEADERS = {
    "Content-Security-Policy": f"{CLIENT_CONTENT_SECURITY_POLICY}; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
}


def client_headers(headers: Any, path: str, url: str) -> None:
    """WHITENOISE_ADD_HEADERS_FUNCTION: every client file gets the client's security headers."""
    for name, value in CLIENT_HEADERS.items():
        headers[name] = value
