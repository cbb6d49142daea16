"""What an experiment's load saw, reduced to one row: pure functions on plain data (tested alone).

A message is identified by its marker (the first word of its content, also its client_id).
- acked: its sender heard REST 201/200 or a WebSocket message.ack for it;
- stored: rows in the database carrying the marker (more than one is a duplicate);
- lost: acked but not stored;
- delivered: acked, and every member other than its sender got it live on a socket, or in a
  catch-up (GET ?since=) that the client made because of a `resync` frame, a version gap or a
  reconnect;
- silent misses: (acked message, member) pairs where the member got neither: the server told
  that member nothing that would make a faithful client look. No final catch-up runs before
  counting, which would hide exactly these.
"""

from dataclasses import dataclass, field

# How a member came to have a message: live on its socket, or by a catch-up and why.
LIVE = "live"
CAUGHT_UP = ("resync", "gap", "reconnect")


@dataclass
class Sent:
    chat_id: int
    sender_id: int
    transport: str  # "rest" or "ws"
    acked: bool = False
    acked_via: str = ""  # "rest" or "ws": a WebSocket send may fall back to REST (same client_id)
    failed: str = ""  # a permanent refusal (4xx), if any


@dataclass
class HttpTally:
    """Every HTTP answer the load received, and the ones that break a target."""

    requests: int = 0
    no_answer: int = 0  # timeouts, refused or reset connections
    server_errors: int = 0  # 5xx
    unavailable: int = 0  # 503
    unavailable_outside: int = 0  # 503 while no part was down
    unavailable_without_retry_after: int = 0
    non_json_errors: int = 0  # status >= 400 whose body is not a JSON object
    html_pages: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def record(
        self, status: int | None, content_type: str, body: bytes, *, in_fault_window: bool, retry_after: bool
    ) -> None:
        self.requests += 1
        if status is None:
            self.no_answer += 1
            return
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status >= 500:
            self.server_errors += 1
        if status == 503:
            self.unavailable += 1
            if not in_fault_window:
                self.unavailable_outside += 1
            if not retry_after:
                self.unavailable_without_retry_after += 1
        looks_html = "html" in content_type.lower() or body.lstrip()[:1] == b"<"
        if looks_html:
            self.html_pages += 1
        if status >= 400 and not is_json_object(body):
            self.non_json_errors += 1


def is_json_object(body: bytes) -> bool:
    import json

    try:
        return isinstance(json.loads(body), dict)
    except ValueError:
        return False


@dataclass
class Row:
    experiment: str
    sent: int = 0
    acked: int = 0
    stored: int = 0
    delivered: int = 0
    caught_up: int = 0  # deliveries (message, member) that came by catch-up rather than live
    lost: int = 0
    duplicated: int = 0
    silent_misses: int = 0
    http: HttpTally = field(default_factory=HttpTally)
    checks: dict[str, bool] = field(default_factory=dict)  # the experiment's own targets
    notes: list[str] = field(default_factory=list)
    error: str = ""  # the experiment could not run to the end
    skipped: str = ""  # why the experiment did not run here (not a failure)

    def targets_missed(self) -> list[str]:
        """The suite-wide targets this row misses (its own checks are counted apart)."""
        counts = {
            "lost": self.lost,
            "duplicated": self.duplicated,
            "silent misses": self.silent_misses,
            "non-JSON errors": self.http.non_json_errors,
            "HTML pages": self.http.html_pages,
            "503 outside fault": self.http.unavailable_outside,
        }
        return [name for name, count in counts.items() if count]

    @property
    def passed(self) -> bool:
        if self.skipped:
            return True
        return not self.error and not self.targets_missed() and all(self.checks.values())


def account(
    row: Row,
    sent: dict[str, Sent],
    members: dict[int, list[int]],
    stored: dict[str, int],
    receipts: dict[int, dict[str, str]],
) -> Row:
    """Fill the message columns of `row`.

    sent: marker → what was sent; members: chat id → user ids; stored: marker → rows in the
    database; receipts: user id → {marker: how it came (LIVE or one of CAUGHT_UP)}.
    """
    row.sent = len(sent)
    row.acked = sum(1 for s in sent.values() if s.acked)
    row.stored = sum(1 for marker in sent if stored.get(marker, 0) > 0)
    row.lost = sum(1 for marker, s in sent.items() if s.acked and stored.get(marker, 0) == 0)
    row.duplicated = sum(1 for marker in sent if stored.get(marker, 0) > 1)
    row.delivered = row.caught_up = row.silent_misses = 0
    for marker, message in sent.items():
        if not message.acked:
            continue
        everyone = True
        for user_id in members.get(message.chat_id, []):
            if user_id == message.sender_id:
                continue
            how = receipts.get(user_id, {}).get(marker)
            if how is None:
                everyone = False
                row.silent_misses += 1
            elif how != LIVE:
                row.caught_up += 1
        if everyone:
            row.delivered += 1
    return row
