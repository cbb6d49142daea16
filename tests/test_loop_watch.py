"""messenger.loop_watch: a step that holds the event loop is logged with where it was held."""

import asyncio
import logging
import sys
import time

from messenger import loop_watch


def hold_the_loop_a_while() -> None:
    time.sleep(0.3)


def test_a_step_that_holds_the_loop_is_logged_with_its_stack(monkeypatch, caplog):
    monkeypatch.setenv("LOOP_STALL_MS", "100")

    async def main() -> None:
        watch = loop_watch.start()
        assert watch is not None
        await asyncio.sleep(0.1)  # the watch has asked the loop at least once
        hold_the_loop_a_while()
        await asyncio.sleep(0.2)  # its report is written

    with caplog.at_level(logging.WARNING, logger="messenger.loop_watch"):
        asyncio.run(main())
    [report] = [r.getMessage() for r in caplog.records if "event loop held" in r.getMessage()]
    held_ms = int(report.split("held ")[1].split(" ms")[0])
    assert 200 <= held_ms < 1000, report
    assert "hold_the_loop_a_while" in report


def test_off_by_default(monkeypatch):
    monkeypatch.delenv("LOOP_STALL_MS", raising=False)
    assert loop_watch.start() is None


def test_the_stack_is_read_without_touching_the_loop_threads_frame_objects(monkeypatch, caplog):
    # Walking another thread's frame objects from Python crashed a worker on Python 3.11 (SIGSEGV,
    # CPython gh-111363): the watch reads stacks through faulthandler and never asks for frame objects.
    def refuse() -> None:
        raise AssertionError("the watch asked for another thread's frame objects")

    monkeypatch.setattr(sys, "_current_frames", refuse)
    test_a_step_that_holds_the_loop_is_logged_with_its_stack(monkeypatch, caplog)


def test_faulthandlers_dump_is_read_as_each_threads_innermost_frames():
    dump = (
        "Thread 0x00007f5e90ddc6c0 (most recent call first):\n"
        '  File "/venv/lib/python3.11/site-packages/twisted/internet/tcp.py", line 278 in doRead\n'
        '  File "/work/main/messenger/serve.py", line 318 in main\n'
        "\n"
        "Current thread 0x00007f5e91848b80 (most recent call first):\n"
        '  File "/work/main/messenger/loop_watch.py", line 80 in stack_of\n'
    )
    stacks = loop_watch.thread_stacks(dump)
    # the watching thread's own section is left out; the other's reads outermost first
    assert stacks == {0x7F5E90DDC6C0: ("/work/main/messenger/serve.py:318 main", "twisted/internet/tcp.py:278 doRead")}
