"""Previews fetched after the commit, in a small pool of threads, one cached answer per URL.

A service that stored (or edited) a message with a URL calls `fetch_after_commit` inside its
transaction: nothing is fetched for a message that rolled back. A worker takes the URL's cached
preview or fetches the page (chats.previews.fetch, at most 5 s), then hands it to
services.message_link_preview_set, which takes the chat's next version and records
`message.updated` in its own outbox, so sockets hear of it and catch-up with `since` returns it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from chats.models import LinkPreview
from chats.previews import fetch, page

logger = logging.getLogger(__name__)

# Two fetches at once per process (each at most 5 s and 1 MB); at most QUEUE_MAX waiting beyond
# them: past that a message gets no preview rather than the process an unbounded queue.
WORKERS = 2
QUEUE_MAX = 200

_pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="link-preview")
_pending: set[Future[None]] = set()
_pending_lock = threading.Lock()
# One fetch of a URL at a time in this process: the second message with it waits and finds it cached.
_url_locks = [threading.Lock() for _ in range(32)]


def fetch_after_commit(*, message_id: int, url: str) -> None:
    """Called inside the transaction that stored the message (a no-op with LINK_PREVIEWS off)."""
    if settings.LINK_PREVIEWS:
        transaction.on_commit(partial(_submit, message_id, url))


def _submit(message_id: int, url: str) -> None:
    with _pending_lock:
        if len(_pending) >= WORKERS + QUEUE_MAX:
            logger.warning("link previews: %d queued, no preview for message %d", len(_pending), message_id)
            return
        future = _pool.submit(_run, message_id, url)
        _pending.add(future)
    future.add_done_callback(_done)


def _done(future: Future[None]) -> None:
    with _pending_lock:
        _pending.discard(future)


def wait_idle(timeout: float) -> bool:
    """Wait until every preview queued so far is stored (tests; a server shutting down). True if so."""
    with _pending_lock:
        pending = list(_pending)
    _, not_done = wait(pending, timeout=timeout)
    return not not_done


def _run(message_id: int, url: str) -> None:
    # Imported here: services imports this module to queue the fetch, and this one stores through it.
    from chats import services

    try:
        preview = cached_preview(url)
        if preview is not None:
            services.message_link_preview_set(message_id=message_id, url=url, preview=preview)
    except Exception:
        logger.exception("link preview of message %d failed", message_id)
    finally:
        for connection in connections.all(initialized_only=True):
            connection.close()  # a worker thread must not keep a database connection between jobs


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def cached_preview(url: str) -> dict[str, Any] | None:
    """The URL's preview as cached within LINK_PREVIEW_CACHE_SECONDS, else fetched now and cached."""
    key = url_key(url)
    with _url_locks[int(key[:8], 16) % len(_url_locks)]:
        fresh_since = timezone.now() - timedelta(seconds=settings.LINK_PREVIEW_CACHE_SECONDS)
        row = LinkPreview.objects.filter(url_hash=key, fetched_at__gte=fresh_since).first()
        if row is not None:
            return row.data
        data = fetch_preview(url)
        LinkPreview.objects.update_or_create(
            url_hash=key, defaults={"url": url, "data": data, "fetched_at": timezone.now()}
        )
        return data


def fetch_preview(url: str) -> dict[str, Any] | None:
    """The page's preview, or None (refused, failed, or nothing to show: logged, never raised)."""
    try:
        found = fetch.fetch(url)
    except fetch.Refused as reason:
        logger.info("no link preview for %s: %s", url, reason)
        return None
    return page.preview_of(found, url=url)
