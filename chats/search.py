"""Message search: an index of every message's text and file name, for substrings of 3+ characters.

Text is folded in Python, the same way when it is indexed and when it is searched (`fold`): NFKD
(full-width Latin becomes ASCII, ligatures split), the accents of the Combining Diacritical Marks
block removed (café → cafe, Cyrillic ё → its plain letter; Japanese voicing marks are kept:
バ stays バ), casefolded (Straße → strasse), recomposed (NFC, so Hangul stays syllables) and its
whitespace runs made one space. A message's document is its folded content and, on a line of its own, its file's folded
name: a query never holds a line break (whitespace became spaces), so no match spans the two.

Two stores, one per database, each made by migration 0006 (chats/migrations), plus on both the
per-chat marks (`chats_search_state`: the chat version the index holds every message up to):

- SQLite: an FTS5 table with the trigram tokenizer (`chats_search_fts`, rowid = message id). A
  quoted phrase of trigrams is an exact substring match. The SQLite here (3.40) has no
  `remove_diacritics` for trigrams (3.45 added it): hence the folding in Python.
- MariaDB/MySQL: a trigram table kept by this module (`chats_search_trigram`: one row per distinct
  trigram of a message, the trigram packed into a BIGINT, primary key (trigram, chat_id,
  message_id)), the postings count of each trigram (`chats_search_count`) and the folded document
  (`chats_search_text`, utf8mb4_bin). A search takes, by their counts, the query's rarest trigram
  and the rarest of each word it does not touch yet (`_plan`), and reads the caller's chats'
  postings newest first, in windows of message ids sized by the hits found so far: those of the
  rarest and of the others not much more common are intersected in the database (grouped by
  message), a more common one is a primary-key lookup per message left (`_postings_sql`); only
  then, for a query longer than a trigram, the document must hold it (LIKE, exact on a binary
  collation: the trigrams picked are a filter, the document decides).
  Why this and not Mroonga: README, "Search".

No write service touches the index: every change to a message takes its chat's next version, and
the index is brought up to a chat's version after the commit (`catch_up`), by a thread of each
process the outbox wakes (`Indexer`), and by a search for whatever of its chats still lags (so a
message just sent is found, and nothing is missed if a process ended before indexing).

Search results are read back as the history reads messages (selectors.message_queryset), and a
deleted or vanished message is never returned even if its index row outlived it: the page's rows
are read with deleted = false.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from chats.models import Chat, Message
from media.models import Attachment

logger = logging.getLogger(__name__)

# The least a query may hold, after trimming: a trigram.
MIN_QUERY_LENGTH = 3
MAX_QUERY_LENGTH = 200
FTS_TABLE = "chats_search_fts"
TRIGRAM_TABLE = "chats_search_trigram"
TEXT_TABLE = "chats_search_text"
COUNT_TABLE = "chats_search_count"
STATE_TABLE = "chats_search_state"
# How many of a query's trigrams a candidate must have a posting of (MariaDB, `_plan`): the rarest,
# then the rarest of each word of the query not yet covered; the document then decides.
INTERSECTED = 3
# About how many postings of the rarest trigram (over all chats) a search's first window of message ids
# holds (MariaDB): the caller's chats' share of them fills a page of a common word; later windows
# are sized by the hits found so far (`_next_window`).
WINDOW_POSTINGS = 4000
# Of the trigrams picked, those at most this many times as common as the rarest are intersected with
# it in the database, their postings read as ranges; a more common one is a primary-key lookup per
# message left (MariaDB, `_postings_sql`). At 1,000,000 messages (60 rare phrases, handler counters)
# 2 read 30 % fewer postings than 8 (2,270 against 3,220 a phrase), with fewer row reads in all.
RANGE_RATIO = 2

_WHITESPACE = re.compile(r"\s+")
_PART_SEPARATOR = "\n"


def fold(text: str) -> str:
    """Text as the index holds it and as a query is matched: accents off, case folded, spaces one."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not "\u0300" <= ch <= "\u036f")
    folded = unicodedata.normalize("NFC", stripped.casefold())
    return _WHITESPACE.sub(" ", folded).strip()


def document(content: str, file_name: str | None) -> str:
    """A message's searchable text: folded content, and its file's folded name on a line of its own."""
    parts = [fold(content)]
    if file_name:
        parts.append(fold(file_name))
    return _PART_SEPARATOR.join(part for part in parts if part)


def trigram_keys(text: str) -> set[int]:
    """The distinct trigrams of folded text, each packed into an int (three code points of 21 bits:
    exact, no hashing, below 2**63). Trigrams across the content/name line break are left out."""
    keys: set[int] = set()
    for part in text.split(_PART_SEPARATOR):
        codes = [ord(ch) for ch in part]
        keys.update((a << 42) | (b << 21) | c for a, b, c in zip(codes, codes[1:], codes[2:], strict=False))
    return keys


def _vendor(conn: BaseDatabaseWrapper | None = None) -> str:
    return (conn or connection).vendor


def _marks(count: int, mark: str = "%s") -> str:
    return ", ".join([mark] * count)


# Writes: the indexer --------------------------------------------------------------------------


def _new_document(kind: str, deleted: bool, content: str, file_name: str | None) -> str:
    """What the index should hold for a message now: "" for one that matches nothing (deleted, or a
    system message recording a change to the chat)."""
    if kind != Message.Kind.TEXT or deleted:
        return ""
    return document(content, file_name)


def catch_up(chat_ids: Iterable[int], conn: BaseDatabaseWrapper | None = None) -> int:
    """Bring the index of these chats up to their messages; returns how many messages it looked at.

    Every change to a message (created, edited, reacted to, pinned, deleted) takes the chat's next
    version (services, under the chat's row lock), and the index keeps, per chat, the version it
    holds everything up to (`chats_search_state`). So what is not indexed yet is the chat's messages
    above that mark, found on the (chat, version) unique key; each is indexed again (its document
    changed), removed (deleted) or left alone (a reaction: the same document), and the mark moves.
    One transaction, the chats' marks locked in ascending order: two indexers (the background
    thread, a search) never index the same change twice, and never wait on each other in a cycle.
    """
    conn = conn or connection
    chats = sorted(set(chat_ids))
    if not chats:
        return 0
    sqlite = _vendor(conn) == "sqlite"
    quote = conn.ops.quote_name
    messages, attachments = quote(Message._meta.db_table), quote(Attachment._meta.db_table)
    chat_table = quote(Chat._meta.db_table)
    with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
        ignore = "INSERT OR IGNORE" if sqlite else "INSERT IGNORE"
        cursor.execute(f"{ignore} INTO {STATE_TABLE} (chat_id, version) VALUES {_marks(len(chats), '(%s, 0)')}", chats)
        # SQLite: the transaction took the database's write lock when it began (BEGIN IMMEDIATE).
        lock = "" if sqlite else " FOR UPDATE"
        cursor.execute(
            f"SELECT chat_id, version FROM {STATE_TABLE} WHERE chat_id IN ({_marks(len(chats))}) "
            f"ORDER BY chat_id{lock}",
            chats,
        )
        marks: dict[int, int] = dict(cursor.fetchall())
        # The chats' versions first: every change up to them is committed, and so visible below.
        cursor.execute(f"SELECT id, version FROM {chat_table} WHERE id IN ({_marks(len(chats))})", chats)
        reached: dict[int, int] = dict(cursor.fetchall())
        cursor.execute(
            f"SELECT m.id, m.chat_id, m.version, m.kind, m.deleted, m.content, a.original_name "
            f"FROM {messages} m LEFT JOIN {attachments} a ON a.id = m.attachment_id "
            f"WHERE {' OR '.join(['(m.chat_id = %s AND m.version > %s)'] * len(chats))}",
            [value for chat in chats for value in (chat, marks[chat])],
        )
        changed = cursor.fetchall()
        wanted: dict[int, tuple[int, str]] = {}
        for message_id, chat_id, version, kind, deleted, content, file_name in changed:
            wanted[message_id] = (chat_id, _new_document(kind, bool(deleted), content, file_name))
            reached[chat_id] = max(reached.get(chat_id, 0), version)
        if wanted:
            _apply(conn, cursor, wanted)
        moved = [(reached[chat], chat) for chat in chats if reached.get(chat, 0) > marks[chat]]
        if moved:
            cursor.executemany(f"UPDATE {STATE_TABLE} SET version = %s WHERE chat_id = %s", moved)
    return len(changed)


def _apply(conn: BaseDatabaseWrapper, cursor: Any, wanted: dict[int, tuple[int, str]]) -> None:
    """Make the index hold `wanted` ({message id: (chat id, document)}; "" = nothing) for these messages."""
    ids = sorted(wanted)
    if _vendor(conn) == "sqlite":
        cursor.execute(f"SELECT rowid, chat_id, body FROM {FTS_TABLE} WHERE rowid IN ({_marks(len(ids))})", ids)
    else:
        cursor.execute(
            f"SELECT message_id, chat_id, body FROM {TEXT_TABLE} WHERE message_id IN ({_marks(len(ids))})", ids
        )
    stored = {message_id: (chat_id, body) for message_id, chat_id, body in cursor.fetchall()}
    stale = [(i, *stored[i]) for i in ids if i in stored and stored[i][1] != wanted[i][1]]
    fresh = [(i, *wanted[i]) for i in ids if wanted[i][1] and (i not in stored or stored[i][1] != wanted[i][1])]
    if stale:
        _delete(conn, cursor, stale)
    if fresh:
        _insert(conn, cursor, fresh)


def _insert(conn: BaseDatabaseWrapper, cursor: Any, rows: Sequence[tuple[int, int, str]]) -> None:
    """Index (message_id, chat_id, document) rows, each statement a batch."""
    if _vendor(conn) == "sqlite":
        cursor.executemany(f"INSERT INTO {FTS_TABLE} (rowid, chat_id, body) VALUES (%s, %s, %s)", rows)
        return
    cursor.execute(
        f"INSERT INTO {TEXT_TABLE} (message_id, chat_id, body) VALUES {_marks(len(rows), '(%s, %s, %s)')}",
        [value for row in rows for value in row],
    )
    postings = sorted((key, chat_id, message_id) for message_id, chat_id, body in rows for key in trigram_keys(body))
    if postings:
        # Ints of this module's making, written into the statement as digits: a send's ~42 postings,
        # or a rebuild's 80,000 a batch, without the driver quoting each of 3 parameters a posting.
        values = ", ".join(f"({int(key)}, {int(chat_id)}, {int(message_id)})" for key, chat_id, message_id in postings)
        cursor.execute(f"INSERT INTO {TRIGRAM_TABLE} (trigram, chat_id, message_id) VALUES {values}")
        _count(cursor, Counter(key for key, _, _ in postings))


def _delete(conn: BaseDatabaseWrapper, cursor: Any, rows: Sequence[tuple[int, int, str]]) -> None:
    """Remove the index entries of (message_id, chat_id, stored document) rows."""
    ids = [message_id for message_id, _, _ in rows]
    if _vendor(conn) == "sqlite":
        cursor.execute(f"DELETE FROM {FTS_TABLE} WHERE rowid IN ({_marks(len(ids))})", ids)
        return
    # The postings are found by the trigrams of the stored document: point deletes on the primary
    # key, no second index on message_id for every send to maintain.
    removed: Counter[int] = Counter()
    for message_id, chat_id, body in rows:
        keys = sorted(trigram_keys(body))
        if keys:
            cursor.execute(
                f"DELETE FROM {TRIGRAM_TABLE} WHERE trigram IN ({_marks(len(keys))}) AND chat_id = %s "
                f"AND message_id = %s",
                [*keys, chat_id, message_id],
            )
            removed.update(keys)
    cursor.execute(f"DELETE FROM {TEXT_TABLE} WHERE message_id IN ({_marks(len(ids))})", ids)
    if removed:
        _count(cursor, Counter({key: -n for key, n in removed.items()}))


def _count(cursor: Any, delta: Counter[int]) -> None:
    """Add to the postings counts of trigrams (MariaDB): in ascending order, as every indexer does,
    so two transactions never wait on each other's rows in a cycle."""
    changes = sorted((key, n) for key, n in delta.items() if n)
    if changes:
        cursor.execute(
            f"INSERT INTO {COUNT_TABLE} (trigram, n) VALUES {_marks(len(changes), '(%s, %s)')} "
            "ON DUPLICATE KEY UPDATE n = n + VALUES(n)",
            [value for change in changes for value in change],
        )


def _code(position: str) -> str:
    """SQL: the code point of the document's character at `position` (ORD of a UTF-32 character)."""
    return f"ORD(CONVERT(SUBSTRING(s.body, {position}, 1) USING utf32))"


# MariaDB: the distinct trigrams of the stored documents, packed as trigram_keys packs them (a row of
# the Sequence engine's `seq_1_to_<n>` for each position; none across the content/name line break).
_SQL_TRIGRAMS = (
    f"SELECT DISTINCT ({_code('n.seq')} << 42) | ({_code('n.seq + 1')} << 21) | {_code('n.seq + 2')}, "
    f"s.chat_id, s.message_id FROM {TEXT_TABLE} s JOIN {{seq}} n ON n.seq <= CHAR_LENGTH(s.body) - 2 "
    "WHERE LOCATE('\\n', SUBSTRING(s.body, n.seq, 3)) = 0"
)


def rebuild(conn: BaseDatabaseWrapper | None = None, *, batch: int = 2000, rekey: bool = False) -> int:
    """Index every message from nothing (migration 0006 on an existing database, bench/search.py
    after a bulk fill), with no other writer: the index then holds every chat up to its version as
    this began. Returns how many messages were indexed.

    `rekey` (MariaDB): only the documents are written from here; the server makes their postings
    (`_SQL_TRIGRAMS`, a range of messages a statement) into the trigram table without its primary
    key, then builds the key once (a sort) and counts the postings. Inserted into the key as they
    come, a million messages' 42 million postings land at random places of a tree larger than the
    buffer pool; made in Python, they cost seconds of CPU a batch. Its ALTER TABLEs commit any
    transaction open on the connection (migration 0006, the bench)."""
    conn = conn or connection
    mysql = _vendor(conn) != "sqlite"
    # The Sequence engine (seq_1_to_<n>) is MariaDB's: on MySQL the postings are made here, as a send's.
    rekey = rekey and mysql and bool(getattr(conn, "mysql_is_mariadb", False))
    quote = conn.ops.quote_name
    messages, attachments = quote(Message._meta.db_table), quote(Attachment._meta.db_table)
    with conn.cursor() as cursor:
        for table in [TRIGRAM_TABLE, TEXT_TABLE, COUNT_TABLE] if mysql else [FTS_TABLE]:
            cursor.execute(f"DELETE FROM {table}")
        cursor.execute(f"DELETE FROM {STATE_TABLE}")
        cursor.execute(
            f"INSERT INTO {STATE_TABLE} (chat_id, version) SELECT id, version FROM {quote(Chat._meta.db_table)}"
        )
        if rekey:
            cursor.execute(f"ALTER TABLE {TRIGRAM_TABLE} DROP PRIMARY KEY")
    done, after = 0, 0
    try:
        while True:
            with conn.cursor() as cursor:
                cursor.execute(
                    f"SELECT m.id, m.chat_id, m.content, a.original_name FROM {messages} m "
                    f"LEFT JOIN {attachments} a ON a.id = m.attachment_id "
                    f"WHERE m.id > %s AND m.deleted = %s AND m.kind = %s ORDER BY m.id LIMIT %s",
                    [after, False, Message.Kind.TEXT, batch],
                )
                rows = cursor.fetchall()
            if not rows:
                break
            indexed = [(i, chat_id, document(content, name)) for i, chat_id, content, name in rows]
            indexed = [row for row in indexed if row[2]]
            if indexed:
                with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
                    if rekey:
                        cursor.execute(
                            f"INSERT INTO {TEXT_TABLE} (message_id, chat_id, body) "
                            f"VALUES {_marks(len(indexed), '(%s, %s, %s)')}",
                            [value for row in indexed for value in row],
                        )
                    else:
                        _insert(conn, cursor, indexed)
            done += len(rows)
            after = rows[-1][0]
        if rekey:
            _postings_from_documents(conn)
        return done
    finally:
        if rekey:
            with conn.cursor() as cursor:
                cursor.execute(f"ALTER TABLE {TRIGRAM_TABLE} ADD PRIMARY KEY (trigram, chat_id, message_id)")
                cursor.execute(
                    f"INSERT INTO {COUNT_TABLE} (trigram, n) "
                    + f"SELECT trigram, COUNT(*) FROM {TRIGRAM_TABLE} GROUP BY trigram"
                )


def _postings_from_documents(conn: BaseDatabaseWrapper, *, batch: int = 20000) -> None:
    with conn.cursor() as cursor:
        cursor.execute(f"SELECT MAX(message_id), MAX(CHAR_LENGTH(body)) FROM {TEXT_TABLE}")
        newest, longest = cursor.fetchone()
        if not newest or longest < 3:
            return
        made = _SQL_TRIGRAMS.format(seq=f"seq_1_to_{int(longest)}")
        for low in range(0, newest + 1, batch):
            cursor.execute(
                f"INSERT INTO {TRIGRAM_TABLE} (trigram, chat_id, message_id) {made} "
                "AND s.message_id >= %s AND s.message_id < %s",
                [low, low + batch],
            )


# The background indexer -----------------------------------------------------------------------


class Indexer:
    """One thread a process that indexes the chats whose messages changed, after their commit.

    The outbox of a committed transaction names the chats (`notify`, from chats.realtime.outbox);
    the thread catches them up (`catch_up`), all the chats named while it worked in one batch. A
    send's own transaction never writes the index. Nothing is lost if the process ends first: the
    marks say what is not indexed, and the next notice of the chat, or a search in it, catches up.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._pending: set[int] = set()
        self._busy = False
        self._thread: threading.Thread | None = None
        # Seconds spent indexing, and batches (bench/search.py reads them: the index's write cost).
        self.busy_seconds = 0.0
        self.batches = 0

    def notify(self, chat_ids: Iterable[int]) -> None:
        if not settings.SEARCH_INDEX_IN_BACKGROUND:
            return  # each search catches its chats up itself
        with self._lock:
            self._pending.update(chat_ids)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="search-indexer", daemon=True)
                self._thread.start()
            self._lock.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Until nothing is pending (tests and the bench); False if `timeout` seconds passed first."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._pending and not self._busy, timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: bool(self._pending))
            # A batch gathers the chats named meanwhile: fewer, larger transactions, so fewer sends
            # wait on the indexer's write lock (SQLite has one writer at a time).
            time.sleep(settings.SEARCH_INDEX_DELAY_MS / 1000)
            with self._lock:
                chats, self._pending, self._busy = self._pending, set(), True
            started = time.perf_counter()
            try:
                close_old_connections()
                catch_up(chats)
                if _vendor() == "sqlite":
                    # The index's pages go to the write-ahead log; copied back into the database
                    # here, the copy is not left to the commit of a send that finds the log full.
                    with connection.cursor() as cursor:
                        cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception:
                # The marks stay where they were: a later notice or search catches these chats up.
                logger.exception("search index: could not catch up %d chats", len(chats))
                connection.close()
            finally:
                with self._lock:
                    self.busy_seconds += time.perf_counter() - started
                    self.batches += 1
                    self._busy = False
                    self._lock.notify_all()


indexer = Indexer()


def notify(chat_ids: Iterable[int]) -> None:
    """These chats' messages changed and the change is committed: index them soon (not in the send)."""
    indexer.notify(chat_ids)


# Reads ----------------------------------------------------------------------------------------


def _catch_up_lagging(chats: list[int]) -> None:
    """Index whatever of these chats is not indexed yet, so a search never misses a stored message
    (the background indexer may not have run yet, or not at all). One query when nothing lags."""
    chat_table = connection.ops.quote_name(Chat._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.id FROM {chat_table} c LEFT JOIN {STATE_TABLE} s ON s.chat_id = c.id "
            f"WHERE c.id IN ({_marks(len(chats))}) AND c.version > COALESCE(s.version, 0)",
            chats,
        )
        lagging = [row[0] for row in cursor.fetchall()]
    if lagging:
        catch_up(lagging)


def matching_ids(*, query: str, chat_ids: Iterable[int], before: int | None, limit: int) -> list[int]:
    """Ids of messages in these chats whose document holds the folded query, newest first (at most
    `limit`). `query` is folded already and at least MIN_QUERY_LENGTH long. Whatever of these chats
    is not indexed yet is indexed first; then one statement on SQLite; on MariaDB the counts of the
    query's trigrams, then the intersection of the rarest (one statement), or the newest indexed
    id and the walk (a statement a window)."""
    chats = list(chat_ids)
    if not chats:
        return []
    _catch_up_lagging(chats)
    if _vendor() == "sqlite":
        return _matching_ids_fts(query, chats, before, limit)
    return _matching_ids_trigrams(query, chats, before, limit)


def _matching_ids_fts(query: str, chats: list[int], before: int | None, limit: int) -> list[int]:
    phrase = '"' + query.replace('"', '""') + '"'
    params: list[Any] = [phrase, *chats]
    below = ""
    if before is not None:
        below = " AND f.rowid < %s"
        params.append(before)
    params += [False, limit]
    # CROSS JOIN keeps the FTS table outermost: its matches come newest first and the LIMIT stops them.
    sql = (
        f"SELECT f.rowid FROM {FTS_TABLE} f CROSS JOIN {connection.ops.quote_name(Message._meta.db_table)} m "
        f"ON m.id = f.rowid "
        f"WHERE {FTS_TABLE} MATCH %s AND f.chat_id IN ({_marks(len(chats))}){below} AND m.deleted = %s "
        f"ORDER BY f.rowid DESC LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def _like_pattern(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _matching_ids_trigrams(query: str, chats: list[int], before: int | None, limit: int) -> list[int]:
    keys = sorted(trigram_keys(query))
    if not keys:
        return []
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT trigram, n FROM {COUNT_TABLE} WHERE trigram IN ({_marks(len(keys))})", keys)
        counts = dict(cursor.fetchall())
        cursor.execute(f"SELECT MAX(message_id) FROM {TEXT_TABLE}")
        newest = cursor.fetchone()[0] or 0
    ranged, looked_up = _plan(query, counts)
    sql = _postings_sql(len(ranged), len(looked_up), len(chats), len(query) > 3)
    # The caller's chats' postings are read on the key (trigram, chat_id, message_id): one range a
    # chat and trigram, in a window of message ids, newest first. The first window holds about
    # WINDOW_POSTINGS of the rarest trigram's postings (counted over all chats), whatever the phrase:
    # a phrase's matches cannot be told from its trigrams' counts (in a small vocabulary every
    # trigram is common and they go together: "g p" is mostly "ing p"), and a window sized by such a
    # guess read every posting of a phrase with thousands of matches (bench/README.md, 1,000,000
    # messages). The next windows are sized by the hits found so far (`_next_window`).
    high = min(before, newest + 1) if before is not None else newest + 1
    start = high
    postings = counts.get(ranged[0], 0)
    window = high if postings <= WINDOW_POSTINGS else max(1, high * WINDOW_POSTINGS // postings)
    found: list[int] = []
    with connection.cursor() as cursor:
        while high > 1 and len(found) < limit:
            low = max(1, high - window)
            params: list[Any] = [*ranged, *chats, low, high, *looked_up]
            if len(query) > 3:
                params.append(_like_pattern(query))
            cursor.execute(sql, [*params, limit - len(found)])
            found += [row[0] for row in cursor.fetchall()]
            high = low
            window = _next_window(window, start - low, len(found), limit)
    return found


def _plan(query: str, counts: dict[int, int]) -> tuple[list[int], list[int]]:
    """The trigrams a candidate must have a posting of: `ranged` (read as key ranges and grouped by
    message: an intersection in the database) and `looked_up` (a primary-key lookup each per
    message the intersection leaves). The document decides the rest (`_postings_sql`).

    The rarest trigram first; then, by count, the rarest of each word of the query (split at its
    spaces) that no trigram picked so far touches, at most INTERSECTED in all. A trigram of a word
    already covered is almost always there when the word is (every "ffe" is a "coffee", every "nin"
    after "g p" an "ing p"): its postings, read or looked up, would leave the same candidates. So
    a phrase of common words intersects one trigram a word (a trigram across a word boundary, often
    the rarest, covers both), and a single word or a CJK run reads one trigram's postings.
    Measured at 1,000,000 messages, 200 rare phrases (bench/README.md, "Rare phrases at 1,000,000
    messages"): 3,460 postings read a phrase against 18,300 for the three rarest trigrams, p50 23
    against 44 ms with a 128 MB buffer pool."""
    ordered = sorted(trigram_keys(query), key=lambda key: (counts.get(key, 0), key))
    words = _words_of_trigrams(query)
    picked = [ordered[0]]
    covered = set(words[ordered[0]])
    for key in ordered[1:]:
        if len(picked) == INTERSECTED:
            break
        if words[key] <= covered:
            continue
        picked.append(key)
        covered |= words[key]
    rarest = max(counts.get(picked[0], 0), 1)
    ranged = [picked[0], *(key for key in picked[1:] if counts.get(key, 0) <= RANGE_RATIO * rarest)]
    return ranged, [key for key in picked if key not in ranged]


def _words_of_trigrams(query: str) -> dict[int, set[int]]:
    """Each trigram of the folded query (packed as `trigram_keys` packs it): the words it has a
    character of, numbered from 0 along the query (words are split at spaces: whitespace is one
    space once folded)."""
    word_at: list[int | None] = []
    word = 0
    for ch in query:
        if ch == " ":
            word_at.append(None)
            word += 1
        else:
            word_at.append(word)
    words: dict[int, set[int]] = {}
    for i in range(len(query) - 2):
        a, b, c = (ord(ch) for ch in query[i : i + 3])
        words.setdefault((a << 42) | (b << 21) | c, set()).update(w for w in word_at[i : i + 3] if w is not None)
    return words


def _next_window(window: int, spanned: int, found: int, limit: int) -> int:
    """The next window of message ids: as wide as the hits found over the `spanned` ids so far say the
    rest of the page needs (and a quarter more), at least twice the last (so a page takes a few
    statements at most: the ids halve at worst) and at most eight times (a phrase with no hit yet)."""
    if found == 0:
        return window * 8
    wanted = int(spanned * (limit - found) / found * 1.25) + 1
    return min(max(wanted, window * 2), window * 8)


def _postings_sql(ranged: int, looked_up: int, chats: int, holds: bool) -> str:
    """The statement of one window: the messages of the caller's chats with a posting of each
    `ranged` trigram (one range of the key a chat and trigram, grouped by message when more than
    one: an intersection in the database, with no lookup a posting), then of each `looked_up` one
    (a primary-key lookup each), then, `holds`, whose document holds the query (LIKE). Newest first;
    STRAIGHT_JOIN keeps the postings outermost, so a document is read only for what is left.

    Measured at 300,000 messages (200 rare phrases of 12 characters, each plan in turn): the
    final plan read 4,390 buffer-pool pages a phrase against 7,710 for a lookup a posting of the
    rarest (bench/README.md, "Message search")."""
    # One trigram: a derived table the server merges into the statement (the plain range walk).
    grouped = f" GROUP BY chat_id, message_id HAVING COUNT(*) = {int(ranged)} ORDER BY NULL" if ranged > 1 else ""
    source = (
        f"(SELECT chat_id, message_id FROM {TRIGRAM_TABLE} WHERE trigram IN ({_marks(ranged)}) "
        f"AND chat_id IN ({_marks(chats)}) AND message_id >= %s AND message_id < %s{grouped}) p"
    )
    joins = "".join(
        f" JOIN {TRIGRAM_TABLE} t{n} ON t{n}.trigram = %s AND t{n}.chat_id = p.chat_id "
        f"AND t{n}.message_id = p.message_id"
        for n in range(looked_up)
    )
    if holds:
        joins += f" JOIN {TEXT_TABLE} s ON s.message_id = p.message_id AND s.body LIKE %s"
    return f"SELECT STRAIGHT_JOIN p.message_id FROM {source}{joins} ORDER BY p.message_id DESC LIMIT %s"


# Schema (migration 0006) ----------------------------------------------------------------------

# Per chat, the version the index holds every message up to (both databases).
STATE_SCHEMA = f"CREATE TABLE {STATE_TABLE} (chat_id BIGINT NOT NULL PRIMARY KEY, version BIGINT NOT NULL)"
SQLITE_SCHEMA = [
    f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(body, chat_id UNINDEXED, tokenize='trigram')",
    STATE_SCHEMA,
]
MYSQL_SCHEMA = [
    f"CREATE TABLE {TEXT_TABLE} ("
    "message_id BIGINT NOT NULL PRIMARY KEY, chat_id BIGINT NOT NULL, "
    "body LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL) ENGINE=InnoDB",
    f"CREATE TABLE {TRIGRAM_TABLE} ("
    "trigram BIGINT NOT NULL, chat_id BIGINT NOT NULL, message_id BIGINT NOT NULL, "
    "PRIMARY KEY (trigram, chat_id, message_id)) ENGINE=InnoDB",
    f"CREATE TABLE {COUNT_TABLE} (trigram BIGINT NOT NULL PRIMARY KEY, n BIGINT NOT NULL) ENGINE=InnoDB",
    f"{STATE_SCHEMA} ENGINE=InnoDB",
]


def create_schema(conn: BaseDatabaseWrapper) -> None:
    statements = SQLITE_SCHEMA if _vendor(conn) == "sqlite" else MYSQL_SCHEMA
    with conn.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def drop_schema(conn: BaseDatabaseWrapper) -> None:
    tables = [FTS_TABLE] if _vendor(conn) == "sqlite" else [TRIGRAM_TABLE, TEXT_TABLE, COUNT_TABLE]
    with conn.cursor() as cursor:
        for table in [*tables, STATE_TABLE]:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
