"""deploy/nginx: the template renders to a configuration Debian's nginx accepts (nginx -t), with TLS
on a certificate made here, and refuses to render with a value missing; a server behind it answers
over HTTPS and its WebSockets upgrade. (Several hosts, X-Accel-Redirect and X-Forwarded-For under
load: make cluster-test.)"""

import asyncio
import json
import shutil
import ssl
import urllib.error
import urllib.request

import pytest
from websockets.asyncio.client import connect
from websockets.typing import Origin

from bench.procs import free_port
from cluster.proxy import TEMPLATE, UPSTREAM_HEADER, Nginx, check, main_config, nginx_program, render, self_signed
from tests.e2e.conftest import own_server_env, start_own_server, stop_own_server

pytestmark = pytest.mark.skipif(
    nginx_program() is None or shutil.which("openssl") is None, reason="needs nginx and openssl"
)


def values(tmp_path, cert, key) -> dict[str, str]:
    return {
        "MESSENGER_SERVER_NAME": "chat.example.test",
        "MESSENGER_ADDRESS": "127.0.0.1",
        "MESSENGER_HTTP_PORT": "18080",
        "MESSENGER_HTTPS_PORT": "18443",
        "MESSENGER_CERT": str(cert),
        "MESSENGER_KEY": str(key),
        "MESSENGER_APP_SERVERS": "server 10.213.0.11:8000 max_fails=1 fail_timeout=5s; "
        "server 10.213.0.12:8000 max_fails=1 fail_timeout=5s;",
        "MESSENGER_UPLOADS_DIR": f"{tmp_path}/uploads/",
    }


def loopback_site(tmp_path, cert, key, https_port: int, app_port: int) -> str:
    """The site on 127.0.0.1:https_port in front of one host at 127.0.0.1:app_port."""
    return render(
        {
            **values(tmp_path, cert, key),
            "MESSENGER_SERVER_NAME": "127.0.0.1",
            "MESSENGER_HTTP_PORT": str(free_port()),
            "MESSENGER_HTTPS_PORT": str(https_port),
            "MESSENGER_APP_SERVERS": f"server 127.0.0.1:{app_port};",
        }
    )


def test_the_rendered_template_passes_nginx_t(tmp_path):
    # given
    cert, key = self_signed(tmp_path, ["chat.example.test", "127.0.0.1"])
    # when
    site = render(values(tmp_path, cert, key))
    result = check(main_config(tmp_path / "nginx", site))
    # then
    assert result.returncode == 0, result.stderr
    assert "${" not in site
    assert "$http_upgrade" in site and "$proxy_add_x_forwarded_for" in site  # nginx's own, untouched
    assert "least_conn;" in site and "internal;" in site


def test_a_value_missing_is_refused(tmp_path):
    # given
    partial = values(tmp_path, "c", "k")
    del partial["MESSENGER_APP_SERVERS"]
    # then
    with pytest.raises(KeyError, match="MESSENGER_APP_SERVERS"):
        render(partial)
    assert "${MESSENGER_APP_SERVERS}" in TEMPLATE.read_text()


async def test_behind_nginx_the_app_answers_over_https_and_its_websockets_upgrade(tmp_path):
    # given: a messenger of its own (SQLite) behind the rendered template, TLS on a certificate made here;
    # the test's nginx names the host that answered (what cluster/acceptance.py tells hosts apart by)
    app_port, https_port = free_port(), free_port()
    env = own_server_env(tmp_path / "data", TRUSTED_PROXIES="1", SENDFILE_HEADER="X-Accel-Redirect")
    cert, key = self_signed(tmp_path, ["127.0.0.1"])
    site = loopback_site(tmp_path, cert, key, https_port, app_port)
    tls = ssl.create_default_context(cafile=str(cert))
    server = await asyncio.to_thread(start_own_server, env, app_port, tmp_path / "server.log")
    nginx = Nginx(main_config(tmp_path / "nginx", site, name_upstream=True), https_port)
    try:
        nginx.start()
        base = f"https://127.0.0.1:{https_port}"

        def register() -> tuple[int, str, dict]:
            body = json.dumps(
                {"username": "proxied", "email": "proxied@example.test", "password": "a long enough password 1"}
            ).encode()
            request = urllib.request.Request(
                f"{base}/api/auth/register", data=body, method="POST", headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, context=tls, timeout=10) as answer:
                return answer.status, answer.headers[UPSTREAM_HEADER], json.loads(answer.read())

        # when
        status, rest_host, registered = await asyncio.to_thread(register)
        url = f"wss://127.0.0.1:{https_port}/ws/?token={registered['access']}"
        async with connect(url, ssl=tls, origin=Origin(base), open_timeout=10) as socket:
            assert socket.response is not None
            socket_host = socket.response.headers[UPSTREAM_HEADER]
            await socket.send(json.dumps({"type": "ping"}))
            answer = json.loads(await asyncio.wait_for(socket.recv(), 10))
        # then: REST and the socket reached the app through nginx
        assert status == 201
        assert answer["type"] == "pong"
        assert rest_host == socket_host == f"127.0.0.1:{app_port}"  # the 101 carries it too
    finally:
        nginx.stop()
        stop_own_server(server)


def test_the_errors_nginx_makes_itself_are_the_contracts_json(tmp_path):
    # given: nginx in front of a host that is not there (a port nothing listens on), TLS as in production
    https_port = free_port()
    cert, key = self_signed(tmp_path, ["127.0.0.1"])
    site = loopback_site(tmp_path, cert, key, https_port, free_port())  # (nothing listens there)
    tls = ssl.create_default_context(cafile=str(cert))
    nginx = Nginx(main_config(tmp_path / "nginx", site), https_port)
    nginx.start()
    try:
        # when: a request no host can answer, and a body over client_max_body_size (11m)
        def answer(request: urllib.request.Request) -> tuple[int, str, str | None, dict]:
            try:
                with urllib.request.urlopen(request, context=tls, timeout=10) as reply:
                    return reply.status, reply.headers.get_content_type(), reply.headers["Retry-After"], {}
            except urllib.error.HTTPError as error:
                return error.code, error.headers.get_content_type(), error.headers["Retry-After"], json.load(error)

        base = f"https://127.0.0.1:{https_port}"
        down = answer(urllib.request.Request(f"{base}/api/chats", method="POST", data=b"{}"))
        large = urllib.request.Request(f"{base}/api/attachments", method="POST", data=b"x" * (12 * 1024 * 1024))
        too_large = answer(large)
        # then: JSON as the server's own (503 with Retry-After, 413), never nginx's HTML page
        assert down[:3] == (503, "application/json", "1")
        assert too_large[:2] == (413, "application/json")
        assert set(down[3]) == set(too_large[3]) == {"detail"}
    finally:
        nginx.stop()
