"""Link previews (contract v1.1, Messages, `link_preview`): the first http(s) URL of a message is
fetched after the commit from a site of the test's own on 127.0.0.1 (allowed by
LINK_PREVIEW_ALLOWED_HOSTS), never from a private, loopback or metadata address otherwise, and
never from anywhere else: every socket connect of these tests is watched, and one to an address
the fetcher must refuse fails the test (the refusals come before any connection)."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from typing import Any

import pytest

from chats import services
from chats.models import LinkPreview, Message
from chats.previews import fetch, jobs
from chats.previews.links import first_url
from tests.conftest import frames
from tests.preview_site import drip, running_site

OG_PAGE = """<!doctype html><html><head>
<title>The title tag</title>
<meta property="og:title" content="Open Graph title">
<meta property="og:description" content="What the page is about.">
<meta property="og:image" content="/images/card.png">
<meta property="og:site_name" content="Example Site">
</head><body>Hello</body></html>"""

EXPECTED_OG = {
    "title": "Open Graph title",
    "description": "What the page is about.",
    "site_name": "Example Site",
}


class Connects:
    """Every socket connect made while a test runs; one to a forbidden place is a failure."""

    def __init__(self) -> None:
        self.made: list[tuple[str, int]] = []
        self.forbidden: list[tuple[str, int]] = []
        self.forbidden_ports: set[int] = set()

    def check(self, address: Any) -> None:
        if not isinstance(address, tuple):
            return  # a Unix socket
        host, port = str(address[0]), int(address[1])
        self.made.append((host, port))
        if host not in ("127.0.0.1", "::1") or port in self.forbidden_ports:
            self.forbidden.append((host, port))
            raise AssertionError(f"connect to {host}:{port}: the fetcher must have refused it before")


@pytest.fixture(autouse=True)
def connects(monkeypatch) -> Any:
    watched = Connects()
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        watched.check(address)
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    yield watched
    assert watched.forbidden == [], watched.forbidden


@pytest.fixture
def site(settings):
    with running_site() as site:
        settings.LINK_PREVIEWS = True
        settings.LINK_PREVIEW_ALLOWED_HOSTS = [f"127.0.0.1:{site.port}"]
        yield site


def fetches_to(connects: Connects, port: int) -> int:
    return sum(1 for made in connects.made if made == ("127.0.0.1", port))


# Reading the page ------------------------------------------------------------------------------


def test_open_graph_data_makes_the_preview(site):
    # given
    url = site.page("/article", OG_PAGE)
    # when
    preview = jobs.fetch_preview(url)
    # then
    assert preview == {**EXPECTED_OG, "url": url, "image_url": site.url("/images/card.png")}


def test_the_title_tag_and_the_description_are_the_fallback(site):
    # given
    url = site.page(
        "/plain",
        "<html><head><title>  Plain\n page </title><meta name='description' content='Just &amp; only'></head></html>",
    )
    # when
    preview = jobs.fetch_preview(url)
    # then
    assert preview == {
        "url": url,
        "title": "Plain page",
        "description": "Just & only",
        "image_url": None,
        "site_name": None,
    }


def test_a_page_is_decoded_by_the_charset_it_declares_in_a_meta(site):
    # given: windows-1251 named by the page only, not by its Content-Type
    html = '<html><head><meta charset="windows-1251"><title>Привет, мир</title></head></html>'
    url = site.page("/ru", html.encode("cp1251"), content_type="text/html")
    # when
    preview = jobs.fetch_preview(url)
    # then
    assert preview is not None
    assert preview["title"] == "Привет, мир"


def test_a_page_that_is_not_html_gives_no_preview(site):
    # given
    url = site.page("/data.json", '{"title": "no"}', content_type="application/json")
    # when / then
    with pytest.raises(fetch.Refused, match="not a page"):
        fetch.fetch(url)
    assert jobs.fetch_preview(url) is None


def test_no_more_than_1_mb_of_a_page_is_read(site):
    # given: a title first, 3 MB of padding, then a description the fetcher never reaches
    padding = "<!-- " + "x" * (3 * 1024 * 1024) + " -->"
    url = site.page("/huge", f"<html><head><title>Huge</title>{padding}<meta name=description content=late></head>")
    # when
    page = fetch.fetch(url)
    preview = jobs.fetch_preview(url)
    # then
    assert len(page.body) == fetch.MAX_BYTES
    assert preview is not None
    assert (preview["title"], preview["description"]) == ("Huge", None)


def test_a_slow_page_is_given_up_after_5_seconds(site):
    # given: a page that would take 30 s to send, a byte every 0.1 s
    finished = threading.Event()
    url = drip(site, "/slow", seconds=30, finished=finished)
    # when / then: given up while the server was still sending
    with pytest.raises(fetch.Refused, match="longer than 5 s"):
        fetch.fetch(url)
    assert not finished.is_set()


def test_a_name_lookup_that_hangs_is_given_up_after_5_seconds(site, settings, monkeypatch):
    # given: a resolver that answers after 7 s (and then with the test's site)
    settings.LINK_PREVIEW_ALLOWED_HOSTS = [f"slow-dns.test:{site.port}"]
    answered = threading.Event()

    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        answered.wait(timeout=7)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    # when / then
    with pytest.raises(fetch.Refused, match="longer than 5 s"):
        fetch.fetch(f"http://slow-dns.test:{site.port}/")
    answered.set()  # let the lookup's thread go
    assert site.hits == {}


def test_redirects_are_followed_and_the_preview_names_the_url_of_the_message(site):
    # given
    site.page("/final", OG_PAGE)
    site.redirect("/moved", "/final", status=301)
    url = site.redirect("/short", site.url("/moved"), status=302)
    # when
    preview = jobs.fetch_preview(url)
    # then
    assert preview is not None
    assert (preview["url"], preview["title"], preview["image_url"]) == (
        url,
        "Open Graph title",
        site.url("/images/card.png"),
    )
    assert (site.hits["/short"], site.hits["/moved"], site.hits["/final"]) == (1, 1, 1)


def test_more_than_5_redirects_are_refused(site):
    # given: /r0 -> /r1 -> ... -> /r6
    for n in range(6):
        site.redirect(f"/r{n}", f"/r{n + 1}")
    site.page("/r6", OG_PAGE)
    # when / then
    with pytest.raises(fetch.Refused, match="more than 5 redirects"):
        fetch.fetch(site.url("/r0"))
    assert site.hits["/r6"] == 0


# Refusals: before any connection -------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/",
        "http://192.168.0.10/page",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[::1]/",
        "http://0.0.0.0/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://localhost/",  # resolved first: 127.0.0.1
        "ftp://example.com/file",
        "http://93.184.216.34:8080/",  # a public address, but not port 80 or 443
        "http://user:secret@93.184.216.34/",
    ],
)
def test_an_address_of_our_own_network_or_a_forbidden_url_is_refused_without_connecting(settings, connects, url):
    # given
    settings.LINK_PREVIEW_ALLOWED_HOSTS = []
    # when / then
    with pytest.raises(fetch.Refused):
        fetch.fetch(url)
    assert connects.made == []


def test_the_local_site_is_refused_once_the_allowed_hosts_no_longer_name_it(site, settings, connects):
    # given: the test's own site, and the setting no longer naming it
    url = site.page("/article", OG_PAGE)
    settings.LINK_PREVIEW_ALLOWED_HOSTS = []
    # when / then
    with pytest.raises(fetch.Refused, match=r"port|non-public"):
        fetch.fetch(url)
    assert connects.made == []
    assert site.hits["/article"] == 0


def test_a_redirect_to_the_metadata_address_is_refused_before_connecting(site, connects):
    # given
    url = site.redirect("/to-metadata", "http://169.254.169.254/latest/meta-data/iam/")
    # when / then
    with pytest.raises(fetch.Refused, match="non-public"):
        fetch.fetch(url)
    assert site.hits["/to-metadata"] == 1
    assert {made[0] for made in connects.made} == {"127.0.0.1"}


def test_a_redirect_to_another_port_of_loopback_is_refused_before_connecting(site, connects):
    # given: a second server on 127.0.0.1 that no setting names
    with running_site() as inner:
        inner.page("/admin", OG_PAGE)
        connects.forbidden_ports.add(inner.port)
        url = site.redirect("/to-inner", inner.url("/admin"))
        # when / then
        with pytest.raises(fetch.Refused):
            fetch.fetch(url)
        assert site.hits["/to-inner"] == 1
        assert inner.hits["/admin"] == 0
    assert fetches_to(connects, inner.port) == 0


def test_the_host_is_resolved_once_and_its_checked_address_connected_to(site, settings, connects, monkeypatch):
    # given: a name whose second answer would be the metadata address (DNS rebinding)
    url = site.page("/article", OG_PAGE).replace("127.0.0.1", "preview.test")
    settings.LINK_PREVIEW_ALLOWED_HOSTS = [f"preview.test:{site.port}"]
    answers = iter(["127.0.0.1", "169.254.169.254"])
    asked: list[str] = []

    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    # when
    page = fetch.fetch(url)
    # then
    assert b"Open Graph title" in page.body
    assert asked == ["preview.test"]
    assert connects.made == [("127.0.0.1", site.port)]


@pytest.fixture
def certificate(tmp_path) -> tuple[str, str]:
    """A self-signed certificate for preview.test (its file, its key's file)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    names = ["-subj", "/CN=preview.test", "-addext", "subjectAltName=DNS:preview.test"]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), *names],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


@pytest.fixture
def tls_site(settings, certificate, monkeypatch):
    """The site over TLS, named preview.test (resolved to 127.0.0.1 by the test) and allowed."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(*certificate)
    with running_site(tls=server_context) as site:
        settings.LINK_PREVIEW_ALLOWED_HOSTS = [f"preview.test:{site.port}"]

        def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
            assert host == "preview.test"
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", port))]

        monkeypatch.setattr(socket, "getaddrinfo", resolve)
        yield site


def test_https_checks_the_certificate_against_the_host_name_at_the_pinned_address(tls_site, certificate, monkeypatch):
    # given: a client context that trusts the site's certificate
    tls_site.page("/secure", OG_PAGE)
    trusting = ssl.create_default_context(cafile=certificate[0])
    trusting.sslsocket_class = fetch._PinnedHTTPSConnection.context.sslsocket_class
    monkeypatch.setattr(fetch._PinnedHTTPSConnection, "context", trusting)
    # when
    page = fetch.fetch(f"https://preview.test:{tls_site.port}/secure")
    # then
    assert b"Open Graph title" in page.body


def test_https_with_a_certificate_nobody_vouches_for_is_refused(tls_site):
    # given
    tls_site.page("/secure", OG_PAGE)
    # when / then
    with pytest.raises(fetch.Refused, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        fetch.fetch(f"https://preview.test:{tls_site.port}/secure")
    assert tls_site.hits == {}


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("169.254.169.254", False),
        ("fd00:ec2::254", False),
        ("fe80::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:93.184.216.34", True),
        ("::", False),
        ("ff02::1", False),
        ("240.0.0.1", False),
    ],
)
def test_which_addresses_are_public(address, public):
    import ipaddress

    assert fetch.public_address(ipaddress.ip_address(address)) is public


def test_the_first_url_is_found_as_the_client_links_it():
    assert first_url("see https://example.com/a_(b), and http://x.org") == "https://example.com/a_(b"
    assert first_url("read (https://example.com/page).") == "https://example.com/page"
    assert first_url("no link, www.example.com") is None
    assert first_url("ftp://files.example.com then http://example.org/page") == "http://example.org/page"
    assert first_url("word " * 790 + "HTTPS://example.com/x") == "HTTPS://example.com/x"


# Through a message: after the commit, the event, the catch-up, the cache ------------------------


def post(client, chat, content: str) -> dict[str, Any]:
    r = client.post(f"/api/chats/{chat.id}/messages", {"content": content}, format="json")
    assert r.status_code == 201, r.content
    return r.json()


@pytest.mark.django_db(transaction=True)
def test_a_message_with_a_url_gets_its_preview_as_message_updated_and_in_the_catch_up(
    site, api_client, chat, announced
):
    # given
    url = site.page("/article", OG_PAGE)
    # when
    sent = post(api_client, chat, f"look: {url} !")
    assert jobs.wait_idle(timeout=10)
    # then
    assert sent["link_preview"] is None
    updated = [frame for _, frame in frames(announced) if frame["type"] == "message.updated"]
    assert len(updated) == 1
    preview = {**EXPECTED_OG, "url": url, "image_url": site.url("/images/card.png")}
    assert updated[0]["message"]["link_preview"] == preview
    assert updated[0]["version"] == sent["version"] + 1
    caught_up = api_client.get(f"/api/chats/{chat.id}/messages", {"since": sent["version"]}).json()["results"]
    assert [(m["id"], m["link_preview"]) for m in caught_up] == [(sent["id"], preview)]


@pytest.mark.django_db(transaction=True)
def test_a_url_is_fetched_once_for_two_messages(site, api_client, chat, connects):
    # given
    url = site.page("/article", OG_PAGE)
    # when
    first = post(api_client, chat, url)
    assert jobs.wait_idle(timeout=10)
    second = post(api_client, chat, f"again {url}")
    assert jobs.wait_idle(timeout=10)
    # then
    assert site.hits["/article"] == 1
    assert fetches_to(connects, site.port) == 1
    assert LinkPreview.objects.count() == 1
    messages = Message.objects.filter(pk__in=[first["id"], second["id"]])
    assert [(m.link_preview or {}).get("title") for m in messages] == ["Open Graph title", "Open Graph title"]


@pytest.mark.django_db(transaction=True)
def test_an_edit_to_another_url_replaces_the_preview_and_one_that_keeps_it_fetches_nothing(site, api_client, chat):
    # given
    first_url_ = site.page("/one", OG_PAGE)
    second_url = site.page("/two", "<title>Second</title>")
    sent = post(api_client, chat, first_url_)
    assert jobs.wait_idle(timeout=10)
    path = f"/api/chats/{chat.id}/messages/{sent['id']}"
    # when: the words change, the URL does not
    kept = api_client.patch(path, {"content": f"{first_url_} (edited)"}, format="json")
    assert jobs.wait_idle(timeout=10)
    # then
    assert kept.status_code == 200, kept.content
    assert kept.json()["link_preview"]["title"] == "Open Graph title"
    # when: another URL
    changed = api_client.patch(path, {"content": f"now {second_url}"}, format="json")
    assert jobs.wait_idle(timeout=10)
    # then: gone with the edit's version, the new one a version later
    assert changed.json()["link_preview"] is None
    message = Message.objects.get(pk=sent["id"])
    assert message.link_preview is not None
    assert (message.link_preview["url"], message.link_preview["title"]) == (second_url, "Second")
    assert message.version == changed.json()["version"] + 1
    assert (site.hits["/one"], site.hits["/two"]) == (1, 1)


@pytest.mark.django_db(transaction=True)
def test_a_page_that_may_not_be_fetched_leaves_the_message_alone(settings, api_client, chat, announced):
    # given
    settings.LINK_PREVIEWS = True
    settings.LINK_PREVIEW_ALLOWED_HOSTS = []
    # when
    sent = post(api_client, chat, "http://169.254.169.254/latest/meta-data/")
    assert jobs.wait_idle(timeout=10)
    # then
    assert Message.objects.get(pk=sent["id"]).version == sent["version"]
    assert [frame["type"] for _, frame in frames(announced)] == ["message.created"]
    assert LinkPreview.objects.get().data is None


@pytest.mark.django_db(transaction=True)
def test_link_previews_off_fetch_nothing(site, settings, api_client, chat):
    # given
    settings.LINK_PREVIEWS = False
    url = site.page("/article", OG_PAGE)
    # when
    sent = post(api_client, chat, url)
    assert jobs.wait_idle(timeout=10)
    # then
    assert site.hits["/article"] == 0
    assert Message.objects.get(pk=sent["id"]).link_preview is None


def test_a_preview_that_arrives_after_a_delete_or_an_edit_to_another_url_changes_nothing(user, chat, announced):
    # given: two messages with a URL, one deleted and one edited to another URL while their pages were fetched
    preview = {**EXPECTED_OG, "url": "https://example.com/a", "image_url": None}
    deleted = services.message_create(chat_id=chat.id, sender=user, content="https://example.com/a").message
    edited = services.message_create(chat_id=chat.id, sender=user, content="https://example.com/a").message
    services.message_delete(chat_id=chat.id, message_id=deleted.id, actor=user)
    services.message_edit(chat_id=chat.id, message_id=edited.id, actor=user, content="https://example.com/b")
    chat.refresh_from_db()
    version = chat.version
    # when
    stored = [
        services.message_link_preview_set(message_id=message.id, url="https://example.com/a", preview=preview)
        for message in (deleted, edited)
    ]
    # then
    assert stored == [None, None]
    chat.refresh_from_db()
    assert chat.version == version
    assert Message.objects.filter(link_preview__isnull=False).count() == 0
