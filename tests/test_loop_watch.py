"""messenger.loop_watch: a step that holds the event loop is logged with where it was held."""

import asyncio
import logging
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
