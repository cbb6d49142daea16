"""A watch on the event loop: when one step of the loop holds it LOOP_STALL_MS or longer, log where.

Every message a worker delivers waits while any one callback of its loop runs, so a step of 200 ms is
200 ms added to every message of that process. asyncio's debug mode names the callback, but a Twisted
timer or a task step is all it can name, and it slows the whole process several times. Here a thread
asks the loop for a no-op every WATCH_PERIOD_SECONDS and, while the loop has not run it, samples the
loop thread's stack every SAMPLE_SECONDS; a wait of LOOP_STALL_MS or more is logged (WARNING) with the
stack seen most often during it. The samples also tell a busy loop from a process the kernel did not
run: a loop found waiting in `select` (epoll) was not the one holding the wakeup up.

The stacks are read by `faulthandler.dump_traceback` (C, in one go while this thread holds the GIL),
not by walking `sys._current_frames()` in Python: a frame object of another thread read across a
GIL switch can point into memory that thread has since reused, and on Python 3.11 that crashed a
worker (SIGSEGV in PyObject_GetAttr, in the bench's crowd; CPython gh-111363).

Off by default (LOOP_STALL_MS=0); the bench's crowd turns it on. Its cost while the loop is well:
twenty wakeups a second.
"""

import asyncio
import collections
import faulthandler
import logging
import os
import re
import sys
import threading
import time

logger = logging.getLogger(__name__)

WATCH_PERIOD_SECONDS = 0.05
SAMPLE_SECONDS = 0.005
STACK_FRAMES = 14  # innermost frames logged


def stall_threshold() -> float:
    """LOOP_STALL_MS: a loop step at least this long is logged (0, the default: no watch)."""
    return float(os.environ.get("LOOP_STALL_MS", "0")) / 1000


_FRAME_LINE = re.compile(r'^  File "(?P<file>.*)", line (?P<line>\d+) in (?P<name>.*)$')


def thread_stacks(dump: str) -> dict[int, tuple[str, ...]]:
    """faulthandler's dump of every thread, as each thread's innermost STACK_FRAMES frames, outermost
    first ("file:line function", site-packages/ left out of the file)."""
    stacks: dict[int, tuple[str, ...]] = {}
    for section in dump.split("\n\n"):
        lines = section.strip("\n").splitlines()
        if not lines or "Thread 0x" not in lines[0]:
            continue
        ident = int(lines[0].split("Thread 0x", 1)[1].split()[0], 16)
        frames = []
        for line in lines[1 : STACK_FRAMES + 1]:  # most recent first
            match = _FRAME_LINE.match(line)
            if match:
                filename = match["file"].rsplit("site-packages/", 1)[-1]
                frames.append(f"{filename}:{match['line']} {match['name']}")
        stacks[ident] = tuple(reversed(frames))
    return stacks


class StackReader:
    """Another thread's stack, read through faulthandler into an in-memory file."""

    def __init__(self) -> None:
        self.fd = os.memfd_create("loop-watch")

    def stack_of(self, ident: int) -> tuple[str, ...] | None:
        os.lseek(self.fd, 0, os.SEEK_SET)
        os.ftruncate(self.fd, 0)
        faulthandler.dump_traceback(self.fd, all_threads=True)
        size = os.lseek(self.fd, 0, os.SEEK_CUR)
        os.lseek(self.fd, 0, os.SEEK_SET)
        dump = os.read(self.fd, size).decode(errors="replace")
        return thread_stacks(dump).get(ident)


class LoopWatch(threading.Thread):
    def __init__(self, loop: asyncio.AbstractEventLoop, loop_thread: int, threshold: float) -> None:
        super().__init__(name="loop-watch", daemon=True)
        self.loop = loop
        self.loop_thread = loop_thread
        self.threshold = threshold

    def run(self) -> None:
        reader = StackReader()
        try:
            while not self.loop.is_closed():
                ran = threading.Event()
                started = time.perf_counter()
                try:
                    self.loop.call_soon_threadsafe(ran.set)
                except RuntimeError:  # the loop closed meanwhile
                    return
                samples: collections.Counter[tuple[str, ...]] = collections.Counter()
                while not ran.wait(SAMPLE_SECONDS):
                    stack = reader.stack_of(self.loop_thread)
                    if stack is not None:
                        samples[stack] += 1
                waited = time.perf_counter() - started
                if waited >= self.threshold and not sys.is_finalizing():
                    self.report(waited, samples)
                time.sleep(WATCH_PERIOD_SECONDS)
        finally:
            os.close(reader.fd)

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
