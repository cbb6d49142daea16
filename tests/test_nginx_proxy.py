"""deploy/nginx: the template renders to a configuration Debian's nginx accepts (nginx -t), with TLS
on a certificate made here, and refuses to render with a value missing."""

import shutil

import pytest

from cluster.proxy import TEMPLATE, check, main_config, nginx_program, render, self_signed

pytestmark = pytest.mark.skipif(
    nginx_program() is None or shutil.which("openssl") is None, reason="needs nginx and openssl"
)


def values(tmp_path, cert, key) -> dict[str, str]:
    return {
        "MESSENGER_SERVER_NAME": "chat.example.test",
        "MESSENGER_HTTP_PORT": "18080",
        "MESSENGER_HTTPS_PORT": "18443",
        "MESSENGER_CERT": str(cert),
        "MESSENGER_KEY": str(key),
        "MESSENGER_APP_SERVERS": "server 10.213.0.11:8000 max_fails=1 fail_timeout=5s; "
        "server 10.213.0.12:8000 max_fails=1 fail_timeout=5s;",
        "MESSENGER_UPLOADS_DIR": f"{tmp_path}/uploads/",
    }


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
