"""The client's pages refuse to be framed and carry their Content-Security-Policy as a header;
the API's docs need no other host."""

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders

from messenger.security_headers import CLIENT_CONTENT_SECURITY_POLICY

RENDERER = Path(settings.BASE_DIR) / "client" / "renderer"
# Every file of the renderer, by its URL (index.html is `/`: its own name redirects there).
CLIENT_FILES = sorted(
    "/" + str(path.relative_to(RENDERER))
    for path in RENDERER.rglob("*")
    if path.is_file() and path.name not in {"package.json", "index.html"}
)


class References(HTMLParser):
    """Every src and href of a page, and the text of its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in {"src", "href"} and value]
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def csp_directives(policy: str) -> dict[str, str]:
    return {part.split()[0]: part.strip() for part in policy.split(";") if part.strip()}


@pytest.mark.parametrize("path", ["/", *CLIENT_FILES])
def test_every_client_file_refuses_framing(client, path):
    # when
    r = client.get(path)
    # then
    assert r.status_code == 200, path
    assert r["X-Frame-Options"] == "DENY"
    policy = csp_directives(r["Content-Security-Policy"])
    assert policy["frame-ancestors"] == "frame-ancestors 'none'"
    assert policy["script-src"] == "script-src 'self'"
    assert policy["object-src"] == "object-src 'none'"


def test_the_header_policy_is_the_pages_meta_policy_with_frame_ancestors(client):
    # given: the desktop app's file:// page has only its <meta>
    meta = re.search(r'http-equiv="Content-Security-Policy"\s+content="([^"]+)"', (RENDERER / "index.html").read_text())
    assert meta is not None
    # when
    header = client.get("/")["Content-Security-Policy"]
    # then
    assert csp_directives(meta.group(1)) == csp_directives(CLIENT_CONTENT_SECURITY_POLICY)
    assert csp_directives(header) == {**csp_directives(meta.group(1)), "frame-ancestors": "frame-ancestors 'none'"}


def test_the_api_docs_reference_no_other_host_and_their_files_are_served_here(client):
    # when
    r = client.get("/api/docs/")
    # then
    assert r.status_code == 200, r.content
    page = References()
    page.feed(r.content.decode())
    scripts = "\n".join(page.scripts)
    assert page.urls, "the page references its assets"
    for url in page.urls:
        assert not urlparse(url).netloc, url
    assert not re.search(r"https?://(?!testserver)", scripts), scripts
    prefix = "/" + settings.STATIC_URL.strip("/") + "/"
    static = [urlparse(url).path for url in page.urls if url.startswith(prefix)]
    assert any(path.endswith("swagger-ui-bundle.js") for path in static), page.urls
    for path in static:
        assert finders.find(path.removeprefix(prefix)), path
