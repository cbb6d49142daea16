"""messenger.asgi: a garbage collection that held the process long is logged."""

import logging

from messenger import asgi


def test_a_collection_that_took_long_is_logged_with_its_generation(monkeypatch, caplog):
    # given: a collection that starts at t=10 s and ends 0.8 s later (a full pass over a crowd's objects)
    clock = iter([10.0, 10.8])
    cpu = iter([3.0, 3.5])
    monkeypatch.setattr(asgi.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(asgi.time, "thread_time", lambda: next(cpu))
    # when
    with caplog.at_level(logging.WARNING, logger="messenger.asgi"):
        asgi._log_slow_collections("start", {"generation": 2})
        asgi._log_slow_collections("stop", {"generation": 2, "collected": 12})
    # then
    assert [r.getMessage() for r in caplog.records] == [
        "garbage collection of generation 2 took 800 ms (500 ms of CPU; 12 objects collected)"
    ]


def test_a_quick_collection_is_not_logged(monkeypatch, caplog):
    clock = iter([10.0, 10.002])
    monkeypatch.setattr(asgi.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(asgi.time, "thread_time", lambda: 1.0)
    with caplog.at_level(logging.WARNING, logger="messenger.asgi"):
        asgi._log_slow_collections("start", {"generation": 0})
        asgi._log_slow_collections("stop", {"generation": 0, "collected": 0})
    assert not caplog.records


def test_the_server_process_watches_its_collections():
    import gc

    assert asgi._log_slow_collections in gc.callbacks
