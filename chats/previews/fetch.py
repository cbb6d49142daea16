"""Fetch a web page for a preview without letting a URL reach into the server's own network (SSRF).

The shape is Mattermost's (services/httpservice: a dialer that resolves the host, refuses reserved
addresses, then dials the address it checked) and the rules Zulip hands to its smokescreen proxy:

- only http and https, only ports 80 and 443, no user or password in the URL;
- the host is resolved once, and every address it resolves to must be public: not private,
  loopback, link-local, multicast, reserved, unspecified, shared (100.64/10) or a cloud metadata
  address, IPv4 and IPv6 alike, an IPv4-mapped IPv6 address judged as its IPv4 address;
- the connection goes to exactly the address checked (no second lookup: a DNS answer that changes
  between the check and the connect -- rebinding -- changes nothing); TLS still checks the
  certificate against the host name;
- every redirect is a new URL checked the same way, at most 5;
- 5 s in all and 1 MB read at most, whatever the server sends; no cookies, no credentials;
- only a text/html answer is read.

A host named in LINK_PREVIEW_ALLOWED_HOSTS ("host" for ports 80/443, "host:port" for that port) is
fetched whatever it resolves to: an intranet, or a test's own server on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from django.conf import settings

MAX_BYTES = 1024 * 1024
TOTAL_SECONDS = 5.0
MAX_REDIRECTS = 5
REDIRECTS = {301, 302, 303, 307, 308}
USER_AGENT = "Mozilla/5.0 (compatible; MessengerLinkPreview/1.0)"
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
HTML_TYPES = {"text/html", "application/xhtml+xml"}
# Name lookups run here, so that a fetch waits for one no longer than its deadline.
_resolver = ThreadPoolExecutor(max_workers=4, thread_name_prefix="link-preview-dns")


class Refused(Exception):
    """The URL may not be fetched, or its answer is no page to preview (the reason is the message)."""


@dataclass(frozen=True)
class Page:
    url: str  # where it was found, after redirects
    body: bytes  # at most MAX_BYTES
    charset: str | None


def public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether a preview may connect to the address: a public unicast address, nothing of ours."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA:
        return False
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global  # shared address space (100.64/10), 6to4 of a private one, ...
    )


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # with its query
    address: str  # the one checked; the only one connected to


def _allowed(host: str, port: int) -> bool | None:
    """True: the host (at this port) is allowed whatever it resolves to; None: it is not named."""
    entries = {entry.lower() for entry in settings.LINK_PREVIEW_ALLOWED_HOSTS}
    if f"{host}:{port}" in entries or f"[{host}]:{port}" in entries:
        return True
    if port in (80, 443) and (host in entries or f"[{host}]" in entries):
        return True
    return None


def _resolve(host: str, port: int, deadline: float) -> list[Any]:
    """getaddrinfo, waited for until the deadline at most (the system's resolver has no timeout of
    ours: a lookup that hangs is left to finish in its thread, the fetch gives up)."""
    lookup = _resolver.submit(lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP))
    try:
        return lookup.result(timeout=_remaining(deadline))
    except TimeoutError:
        raise Refused(f"took longer than {TOTAL_SECONDS:g} s") from None
    except (OSError, UnicodeError) as error:
        raise Refused(f"cannot resolve {host}: {error}") from None


def check(url: str, deadline: float) -> Target:
    """Where `url` would be fetched from, or Refused. Resolves the host (the one lookup)."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise Refused(f"not a URL: {error}") from None
    host = (parts.hostname or "").rstrip(".").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise Refused("only http and https URLs")
    if parts.username is not None or parts.password is not None:
        raise Refused("no credentials in a previewed URL")
    allowed = _allowed(host, port)
    if port not in (80, 443) and not allowed:
        raise Refused(f"port {port} is not allowed")
    infos = _resolve(host, port, deadline)
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise Refused(f"{host} has no address")
    if not allowed:
        # Every address must be public: a host that also resolves to an inner one is refused.
        inner = [str(address) for address in addresses if not public_address(address)]
        if inner:
            raise Refused(f"{host} resolves to a non-public address ({', '.join(inner)})")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, host, port, path, str(addresses[0]))


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise Refused(f"took longer than {TOTAL_SECONDS:g} s")
    return left


class _DeadlineSocket(socket.socket):
    """A socket whose every read waits at most until the fetch's deadline: a server that sends a
    byte a second holds it 5 s in all, not 5 s a read."""

    deadline = 0.0

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        self.settimeout(_remaining(self.deadline))
        return super().recv_into(buffer, nbytes, flags)


class _DeadlineSSLSocket(ssl.SSLSocket):
    deadline = 0.0

    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:
        self.settimeout(_remaining(self.deadline))
        return super().recv_into(buffer, nbytes, flags)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to the checked address, naming the host in its Host header."""

    def __init__(self, target: Target, deadline: float) -> None:
        super().__init__(target.host, target.port, timeout=_remaining(deadline))
        self.address = target.address
        self.deadline = deadline

    def connect(self) -> None:
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        sock = _DeadlineSocket(family, socket.SOCK_STREAM)
        sock.deadline = self.deadline
        try:
            sock.settimeout(_remaining(self.deadline))
            sock.connect((self.address, self.port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """The same over TLS: the certificate is checked against the host name (SNI too)."""

    context = ssl.create_default_context()
    context.sslsocket_class = _DeadlineSSLSocket

    def connect(self) -> None:
        super().connect()
        wrapped = self.context.wrap_socket(self.sock, server_hostname=self.host)
        wrapped.deadline = self.deadline  # type: ignore[attr-defined]
        self.sock = wrapped


def _read_capped(response: http.client.HTTPResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < MAX_BYTES:
        chunk = response.read1(min(64 * 1024, MAX_BYTES - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def fetch(url: str) -> Page:
    """The HTML page at `url` (following at most 5 redirects, each checked), or Refused."""
    deadline = time.monotonic() + TOTAL_SECONDS
    for _ in range(MAX_REDIRECTS + 1):
        target = check(url, deadline)
        connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
        connection = connection_class(target, deadline)
        try:
            connection.putrequest("GET", target.path, skip_accept_encoding=True)
            connection.putheader("User-Agent", USER_AGENT)
            connection.putheader("Accept", "text/html,application/xhtml+xml;q=0.9")
            connection.putheader("Accept-Encoding", "identity")
            connection.endheaders()
            response = connection.getresponse()
            if response.status in REDIRECTS:
                location = response.getheader("Location")
                if not location:
                    raise Refused(f"a {response.status} without a Location")
                url = urljoin(url, location.strip())
                continue
            if response.status != 200:
                raise Refused(f"answered {response.status}")
            content_type = response.headers.get_content_type()
            if content_type not in HTML_TYPES:
                raise Refused(f"not a page ({content_type})")
            body = _read_capped(response)
            return Page(url=url, body=body, charset=response.headers.get_content_charset())
        except (OSError, http.client.HTTPException) as error:
            if time.monotonic() >= deadline:
                raise Refused(f"took longer than {TOTAL_SECONDS:g} s") from None
            raise Refused(f"{type(error).__name__}: {error}") from None
        finally:
            connection.close()
    raise Refused(f"more than {MAX_REDIRECTS} redirects")
