"""Real threads for concurrency tests (with `django_db(transaction=True)`)."""

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection


def run_together(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run work(0..count-1) in `count` threads released at the same moment; each closes its connection."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = work(index)
        except BaseException as error:  # re-raised in the test's thread below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    if errors:
        raise errors[0]
    return results
