"""A watch on the event loop: when one step of the loop holds it LOOP_STALL_MS or longer, log where.

Every message a worker delivers waits while any one callback of its loop runs, so a step of 200 ms is
200 ms added to every message of that process. asyncio's debug mode names the callback, but a Twisted
timer or a task step is all it can name, and it slows the whole process several times. Here a thread
asks the loop for a no-op every WATCH_PERIOD_SECONDS and, while the loop has not run it, samples the
loop thread's stack every SAMPLE_SECONDS; a wait of LOOP_STALL_MS or more is logged (WARNING) with the
stack seen most often during it. The samples also tell a busy loop from a process the kernel did not
run: a loop found waiting in `select` (epoll) was not the one holding the wakeup up.

Off by default (LOOP_STALL_MS=0); the bench's crowd turns it on. Its cost while the loop is well:
twenty wakeups a second.
"""

import asyncio
import collections
import logging
import os
import sys
import threading
import time
import traceback

logger = logging.getLogger(__name__)

WATCH_PERIOD_SECONDS = 0.05
SAMPLE_SECONDS = 0.005
STACK_FRAMES = 14  # innermost frames logged


def stall_threshold() -> float:
    """LOOP_STALL_MS: a loop step at least this long is logged (0, the default: no watch)."""
    return float(os.environ.get("LOOP_STALL_MS", "0")) / 1000


def _stack(frame: object) -> tuple[str, ...]:
    summary = traceback.extract_stack(frame)[-STACK_FRAMES:]  # type: ignore[arg-type]
    return tuple(f"{entry.filename.rsplit('site-packages/', 1)[-1]}:{entry.lineno} {entry.name}" for entry in summary)


class LoopWatch(threading.Thread):
    def __init__(self, loop: asyncio.AbstractEventLoop, loop_thread: int, threshold: float) -> None:
        super().__init__(name="loop-watch", daemon=True)
        self.loop = loop
        self.loop_thread = loop_thread
        self.threshold = threshold

    def run(self) -> None:
        while not self.loop.is_closed():
            ran = threading.Event()
            started = time.perf_counter()
            try:
                self.loop.call_soon_threadsafe(ran.set)
            except RuntimeError:  # the loop closed meanwhile
                return
            samples: collections.Counter[tuple[str, ...]] = collections.Counter()
            while not ran.wait(SAMPLE_SECONDS):
                frame = sys._current_frames().get(self.loop_thread)
                if frame is not None:
                    samples[_stack(frame)] += 1
            waited = time.perf_counter() - started
            if waited >= self.threshold and not sys.is_finalizing():
                self.report(waited, samples)
            time.sleep(WATCH_PERIOD_SECONDS)

    def report(self, waited: float, samples: collections.Counter[tuple[str, ...]]) -> None:
        if not samples:
            logger.warning("event loop held %.0f ms (no sample of its thread)", waited * 1000)
            return
        stack, seen = samples.most_common(1)[0]
        logger.warning(
            "event loop held %.0f ms; in %d of %d samples:\n  %s",
            waited * 1000,
            seen,
            sum(samples.values()),
            "\n  ".join(stack),
        )


def start(loop: asyncio.AbstractEventLoop | None = None) -> LoopWatch | None:
    """Watch the running loop (call from its thread) when LOOP_STALL_MS is set."""
    threshold = stall_threshold()
    if threshold <= 0:
        return None
    watch = LoopWatch(loop or asyncio.get_event_loop(), threading.get_ident(), threshold)
    watch.start()
    return watch
