"""The soak (off by default, `--soak`): idle sockets, active senders and REST traffic for minutes.

The messenger alone: 5,000 idle authenticated sockets; 200 senders posting `--soak-rate`
messages/s each (default 0.2: a message every 5 s from each of 200 people), two in each chat
of the multi-chat layout's 100 chats of 10 (the layout's sender, and one of the receiving
members on a second socket of theirs); and 100 REST requests/s (REST_MIX: chat lists and
history pages) from 8 threads, for `--soak-minutes`, against `--soak-workers` daphne processes
(messenger.serve --workers; default 2, one per core of the 2-core target machine). Every
message must reach every member; resident memory (of all the workers) is sampled after each
10-second window and must stay flat after warm-up.
"""

import http.client
import threading
import time
from typing import Any

from bench.load import Sender, Worker, ask_all, measure_step, open_senders, split
from bench.procs import LOOPBACK
from bench.rest import requests_for
from bench.scenarios import Context, Messenger, log, multichat_layout

WINDOW_SECONDS = 10.0
REST_PER_SECOND = 100.0
# Each thread waits for its answer before the next request: enough of them that 100/s can be
# offered while answers take up to ~80 ms.
REST_THREADS = 8


# What the REST traffic asks for, in turn: a client's first screen (its chat list), the newest
# page of the chat it opens, an older page as it scrolls, and one chat list in four from the
# user in 200 chats. (100 requests/s of that 200-chat list alone need about 1.5 cores here:
# more than the machine has beside everything else.)
REST_MIX = ("chat_list_10", "history_first", "chat_list_200", "history_deep")


def rest_load(
    port: int, requests: list[tuple[str, str]], per_second: float, stop: threading.Event, counts: dict[str, int]
) -> None:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    interval = 1.0 / per_second
    due = time.monotonic()
    turn = 0
    while not stop.is_set():
        path, token = requests[turn % len(requests)]
        turn += 1
        try:
            connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
            answer = connection.getresponse()
            answer.read()
            key = "ok" if answer.status == 200 else f"status {answer.status}"
            counts[key] = counts.get(key, 0) + 1
        except (OSError, http.client.HTTPException) as exc:
            counts[type(exc).__name__] = counts.get(type(exc).__name__, 0) + 1
            connection.close()
            connection = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
        due += interval
        delay = due - time.monotonic()
        if delay > 0:
            stop.wait(delay)
    connection.close()


async def run_soak(
    context: Context, seed: dict[str, Any], *, minutes: float, rate_per_sender: float, server_workers: int
) -> dict[str, Any]:
    log(f"soak: messenger ({server_workers} processes), {minutes:g} minutes, {rate_per_sender:g} messages/s a sender")
    target = Messenger(context, workers=server_workers)
    layout = multichat_layout(seed)
    idle_tokens: list[str] = seed["idle"]["tokens"]
    workers: list[Worker] = []
    idle_workers: list[Worker] = []
    senders: list[Sender] = []
    stop = threading.Event()
    threads: list[threading.Thread] = []
    rest_counts: dict[str, int] = {"ok": 0}
    target.start()
    try:
        idle_urls = [target.url(0, token) for token in idle_tokens]
        idle_workers = [Worker(part, target.origin).start() for part in split(idle_urls, 2)]
        await ask_all(idle_workers, "connect", timeout=600)
        urls = [target.url(chat_id, token) for chat_id, tokens in layout.rooms for token in tokens]
        workers = [Worker(part, target.origin).start() for part in split(urls, context.client_processes)]
        await ask_all(workers, "connect", timeout=300)
        # A second sender in each chat: a receiving member, on a socket of their own for sending.
        pairs = layout.senders + [(chat_id, tokens[0]) for chat_id, tokens in layout.rooms]
        senders = await open_senders([(target.url(c, t), target.frame(c)) for c, t in pairs], target.origin)
        every_request = requests_for(seed)
        rest_requests = [every_request[name] for name in REST_MIX]
        for _ in range(REST_THREADS):
            thread = threading.Thread(
                target=rest_load,
                args=(target.port, rest_requests, REST_PER_SECOND / REST_THREADS, stop, rest_counts),
                daemon=True,
            )
            thread.start()
            threads.append(thread)
        windows: list[dict[str, Any]] = []
        seq = 1
        deadline = time.monotonic() + minutes * 60
        while time.monotonic() < deadline:
            step = await measure_step(
                senders=senders,
                workers=workers,
                server_cpu=target.cpu_seconds,
                server_pid=target.pid,
                rate=len(senders) * rate_per_sender,
                duration=WINDOW_SECONDS,
                receivers_per_message=layout.receivers_per_message,
                first_seq=seq,
            )
            seq += step.sent + 1000
            statuses = await ask_all(idle_workers, "status")
            window = {
                "rss_mib": target.rss() / 2**20,
                "idle_open": sum(s[0] for s in statuses),
                "lost": step.lost,
                "p99_ms": step.p99_ms,
                # What the senders heard (acks, errors) and how many receipts arrived of those due:
                # a lost message never stored shows as a missing ack, one stored but not pushed does not.
                "sender_answers": step.sender_answers,
                "receipts": step.deliveries,
                "receipts_due": step.sent * layout.receivers_per_message,
                "out_of_order": step.out_of_order,  # message events below a version their socket had seen
            }
            windows.append(window)
            log(
                f"  soak {len(windows):3}: rss {window['rss_mib']:.1f} MiB, idle open {window['idle_open']}, "
                f"lost {step.lost}/{step.sent}, p99 {step.p99_ms:.1f} ms, out-of-order {step.out_of_order}, "
                f"REST {dict(rest_counts)}"
                + (f", senders heard {step.sender_answers}, receipts {step.deliveries}" if step.lost else "")
            )
        settled = windows[len(windows) // 4 :] or windows
        return {
            "minutes": minutes,
            "server_workers": server_workers,
            "senders": len(senders),
            "messages_per_second": len(senders) * rate_per_sender,
            "windows": windows,
            "lost": sum(w["lost"] for w in windows),
            "out_of_order": sum(w["out_of_order"] for w in windows),
            "rss_growth_mib_after_warmup": settled[-1]["rss_mib"] - settled[0]["rss_mib"],
            "rest": rest_counts,
            "rest_mix": list(REST_MIX),
        }
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        for sender in senders:
            sender.socket.close()
        for worker in workers + idle_workers:
            worker.stop()
        target.stop()
