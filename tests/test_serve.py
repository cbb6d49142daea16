import logging
import os
import socket
import subprocess
import sys
import time

from messenger.serve import Launcher, daphne_arguments, redact, restart_delay, worker_count


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


def test_an_endpoint_option_is_not_taken_for_the_application():
    args = daphne_arguments(["-e", "tcp:port=9000:interface=127.0.0.1:backlog=4096"])
    assert args[-1] == "messenger.asgi:application"


def test_workers_are_counted_from_the_option_or_the_environment(monkeypatch):
    monkeypatch.setenv("WEB_WORKERS", "3")
    assert worker_count(["-b", "0.0.0.0"]) == (3, ["-b", "0.0.0.0"])
    assert worker_count(["--workers", "2", "-p", "80"]) == (2, ["-p", "80"])


def test_several_workers_without_redis_are_refused(tmp_path):
    # given: the in-memory channel layer is per process, so workers could not share events
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(DEBUG="true", DATA_DIR=str(tmp_path))
    # when
    done = subprocess.run(
        [sys.executable, "-m", "messenger.serve", "--workers", "2", "-p", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # then
    assert done.returncode != 0
    assert "REDIS_URL" in done.stderr


def test_a_worker_is_restarted_at_once_then_with_a_doubling_back_off_while_it_keeps_dying():
    assert [restart_delay(n) for n in range(1, 9)] == [0, 1, 2, 4, 8, 16, 30, 30]


def test_a_crash_looping_worker_is_restarted_with_back_off_and_logged(caplog):
    # given: a launcher whose one worker dies as soon as it starts
    caplog.set_level(logging.INFO, logger="messenger.serve")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        command = [sys.executable, "-c", "raise SystemExit(3)"]
        launcher = Launcher(listener, [], 1, timeout=1, command=command, spare=False)
        pids: set[int] = set()
        # when: the launcher watches it for 2.5 s
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            launcher._reap_and_restart()
            pids.update(child.pid for child in launcher.children if child is not None)
            time.sleep(0.02)
        for child in launcher.children:
            if child is not None:
                child.kill()
                child.wait()
    # then: started, restarted at once, then after 1 s (the next waits 2 s)
    assert len(pids) == 3
    lines = [record.getMessage() for record in caplog.records]
    assert "exited with code 3" in lines[0] and "restarting it" in lines[0]
    assert any("restarting it in 1 s (it keeps dying: 2 quick exits)" in line for line in lines), lines
