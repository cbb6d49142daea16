"""Every answer under /api/ is JSON, errors included: never Django's HTML page (contract v1.1)."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from accounts.views import MeView


def assert_json_error(r, status: int) -> dict:
    assert r.status_code == status, r.content
    assert r["Content-Type"].startswith("application/json"), r.content[:200]
    body = r.json()
    assert isinstance(body, dict) and body, body
    return body


def test_an_unknown_api_path_is_a_json_404(api_client):
    # when
    r = api_client.get("/api/no-such-thing")
    # then
    assert assert_json_error(r, 404) == {"detail": "Not found."}
    assert r["X-Content-Type-Options"] == "nosniff"  # the page's other headers are kept


def test_an_unknown_api_path_is_a_json_404_also_under_debug(api_client, settings):
    # given: Django's debug 404 page is HTML too
    settings.DEBUG = True
    # when
    r = api_client.get("/api/no-such-thing", HTTP_ACCEPT="text/html")
    # then
    assert_json_error(r, 404)


def test_a_method_the_path_does_not_serve_is_a_json_405(api_client):
    # when
    r = api_client.delete("/api/auth/me")
    # then
    assert "detail" in assert_json_error(r, 405)
    assert "GET" in r["Allow"]


@pytest.mark.parametrize("debug", [False, True])
def test_an_unexpected_exception_in_a_view_is_a_json_500(api_client, settings, monkeypatch, debug):
    # given
    settings.DEBUG = debug

    def broken(self, request):
        raise RuntimeError("a bug")

    monkeypatch.setattr(MeView, "get", broken)
    api_client.raise_request_exception = False
    # when
    r = api_client.get("/api/auth/me")
    # then: the contract's detail, never the exception's text or a traceback
    assert assert_json_error(r, 500) == {"detail": "Server error."}


def test_a_body_too_large_is_a_json_413(api_client, settings):
    # given
    body = '{"title": "' + "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10) + '"}'
    # when
    r = api_client.post("/api/chats", body, content_type="application/json")
    # then
    assert "detail" in assert_json_error(r, 413)


def test_malformed_json_is_a_json_400(api_client):
    # when
    r = api_client.post("/api/chats", '{"is_group": tru', content_type="application/json")
    # then
    assert "detail" in assert_json_error(r, 400)


def test_an_unsupported_media_type_is_a_json_415(api_client):
    # when
    r = api_client.post("/api/chats", "is_group=true", content_type="text/plain")
    # then
    assert "detail" in assert_json_error(r, 415)


def test_pages_outside_the_api_keep_django_s_answers(client, db):
    # when
    r = client.get("/no-such-page")
    # then
    assert r.status_code == 404
    assert not r["Content-Type"].startswith("application/json")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_under_daphne_a_malformed_multipart_body_is_answered_by_django_in_json(tmp_path):
    # given: daphne serving the messenger (Twisted parsed multipart bodies itself, and answered a
    # malformed one with a bare 400 and no body)
    port = _free_port()
    env = {**os.environ, "DEBUG": "false", "SECRET_KEY": "x" * 50, "DATA_DIR": str(tmp_path), "LOG_LEVEL": "WARNING"}
    env["ALLOWED_HOSTS"] = "127.0.0.1"
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    daphne = str(Path(sys.executable).with_name("daphne"))
    server = subprocess.Popen(
        [daphne, "-v", "0", "-b", "127.0.0.1", "-p", str(port), "messenger.asgi:application"],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "daphne did not start"
                time.sleep(0.2)
        boundary = "c637e12e2b1a998d80d1b087531af51c"
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/auth/logout",
            data=f"--{boundary}--\r\n".encode(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            method="POST",
        )
        # when
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=10)
        # then
        assert answer.value.code == 400
        assert answer.value.headers["Content-Type"].startswith("application/json")
        assert json.loads(answer.value.read()) == {"refresh": ["This field is required."]}
    finally:
        server.terminate()
        server.wait(timeout=10)
