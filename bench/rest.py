"""The REST scenario: latency over HTTP against daphne, query counts in-process.

Latency is measured on the real server (not DEBUG) over one keep-alive connection, requests
one after another. Query counts come from `bench.rest_queries`, run in a separate process with
Django's test Client and CaptureQueriesContext on the same database, so the server under
measurement never runs with DEBUG on.
"""

import http.client
import json
import time
from pathlib import Path
from typing import Any

from bench.load import CpuMeter, percentile
from bench.procs import LOOPBACK, PYTHON, REPO, run_checked


def requests_for(seed: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """name → (path, access token) of every request the scenario times and counts."""
    rest = seed["rest"]
    chat, page = rest["history_chat_id"], rest["page"]
    return {
        "chat_list_200": ("/api/chats", rest["user"]),
        "chat_list_200_limit100": ("/api/chats?limit=100", rest["user"]),
        "chat_list_10": ("/api/chats", rest["small_user"]),
        "history_first": (f"/api/chats/{chat}/messages?limit={page}", rest["user"]),
        "history_deep": (f"/api/chats/{chat}/messages?before={rest['deep_before_id']}&limit={page}", rest["user"]),
    }


def time_requests(port: int, path: str, token: str, *, count: int, warmup: int = 10) -> dict[str, Any]:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    timings: list[float] = []
    size = 0
    try:
        for index in range(warmup + count):
            started = time.perf_counter_ns()
            connection.request("GET", path, headers=headers)
            answer = connection.getresponse()
            body = answer.read()
            elapsed = (time.perf_counter_ns() - started) / 1e6
            if answer.status != 200:
                raise RuntimeError(f"GET {path} answered {answer.status}: {body[:200]!r}")
            if index >= warmup:
                timings.append(elapsed)
                size = len(body)
    finally:
        connection.close()
    timings.sort()
    return {
        "requests": count,
        "p50_ms": percentile(timings, 0.50),
        "p99_ms": percentile(timings, 0.99),
        "max_ms": timings[-1],
        "bytes": size,
    }


def query_counts(seed_path: Path, env: dict[str, str], log_dir: Path) -> dict[str, int]:
    out = seed_path.with_name("rest-queries.json")
    env = dict(env, ALLOWED_HOSTS="testserver,127.0.0.1,localhost")
    command = [PYTHON, "-m", "bench.rest_queries", "--seed", str(seed_path), "--out", str(out)]
    run_checked(command, env=env, log_path=log_dir / "rest_queries.log", timeout=300)
    return dict(json.loads(out.read_text()))


def run_rest(
    port: int, server_pid: int, seed: dict[str, Any], seed_path: Path, env: dict[str, str], log_dir: Path, *, count: int
) -> dict[str, Any]:
    queries = query_counts(seed_path, env, log_dir)
    results: dict[str, Any] = {"history_size": seed["rest"]["history_size"], "chat_count": seed["rest"]["chat_count"]}
    for name, (path, token) in requests_for(seed).items():
        meter = CpuMeter([server_pid])
        timing = time_requests(port, path, token, count=count)
        timing["foreign_cpu"] = meter.foreign_cores()
        timing["queries"] = queries.get(name)
        timing["path"] = path
        results[name] = timing
        print(
            f"  {name:24} p50 {timing['p50_ms']:6.2f} ms  p99 {timing['p99_ms']:6.2f} ms  "
            f"{timing['queries']} queries  {timing['bytes']} bytes  others {timing['foreign_cpu']:4.0%}",
            flush=True,
        )
    return results


__all__ = ["REPO", "run_rest"]
