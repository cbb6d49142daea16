from messenger.serve import daphne_arguments, redact


def test_access_log_lines_never_carry_a_token():
    # given
    line = "GET /api/attachments/7/file?token=eyJhbGciOi.abc.def&download=1"
    # when
    shown = redact(line)
    # then
    assert "eyJ" not in shown
    assert shown == "GET /api/attachments/7/file?token=[redacted]&download=1"


def test_websocket_connect_lines_are_redacted_too():
    assert redact("WSCONNECT /ws/?token=abc") == "WSCONNECT /ws/?token=[redacted]"


def test_the_launcher_serves_the_messenger_with_a_protocol_level_message_cap(monkeypatch):
    # given
    monkeypatch.setenv("WEBSOCKET_MAX_FRAME_BYTES", "1000")
    # when
    args = daphne_arguments(["-b", "127.0.0.1", "-p", "9000"])
    # then
    assert args[:2] == ["--websocket-max-message-size", "4000"]
    assert args[-1] == "messenger.asgi:application"


def test_explicit_daphne_options_win():
    args = daphne_arguments(["--websocket-max-message-size", "5", "other.asgi:app"])
    assert args == ["--websocket-max-message-size", "5", "other.asgi:app"]
