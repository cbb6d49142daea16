"""Message search: an index of every message's text and file name, for substrings of 3+ characters.

Text is folded in Python, the same way when it is indexed and when it is searched (`fold`): NFKD
(full-width Latin becomes ASCII, ligatures split), the accents of the Combining Diacritical Marks
block removed (café → cafe, Cyrillic ё → its plain letter; Japanese voicing marks are kept:
バ stays バ), casefolded (Straße → strasse), recomposed (NFC, so Hangul stays syllables) and its
whitespace runs made one space. A message's document is its folded content and, on a line of its own, its file's folded
name: a query never holds a line break (whitespace became spaces), so no match spans the two.

Two stores, one per database, each created by migration 0004 (chats/migrations) and fed by the
write services (`index_new`, `reindex`, `unindex`: one call in each of message_create,
message_edit and message_soft_delete):

- SQLite: an FTS5 table with the trigram tokenizer (`chats_search_fts`, rowid = message id). A
  quoted phrase of trigrams is an exact substring match. The SQLite here (3.40) has no
  `remove_diacritics` for trigrams (3.45 added it): hence the folding in Python.
- MariaDB/MySQL: a trigram table kept by this module (`chats_search_trigram`: one row per distinct
  trigram of a message, the trigram packed into a BIGINT, primary key (trigram, message_id)) and
  the folded document (`chats_search_text`, utf8mb4_bin). A search walks the postings of the
  query's rarest trigram newest first and keeps the rows whose document holds the whole query
  (LIKE, exact on a binary collation), stopping once the page is full. Why this and not Mroonga:
  README, "Search".

Search results are read back as the history reads messages (selectors.message_queryset), and a
deleted or vanished message is never returned even if its index row outlived it: the page's rows
are read with deleted = false.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper

from chats.models import Message
from media.models import Attachment

# The least a query may hold, after trimming: a trigram.
MIN_QUERY_LENGTH = 3
MAX_QUERY_LENGTH = 200
FTS_TABLE = "chats_search_fts"
TRIGRAM_TABLE = "chats_search_trigram"
TEXT_TABLE = "chats_search_text"
# How many postings of each query trigram are counted to find the rarest (MariaDB): enough to tell
# a rare trigram from a common one, little enough that counting stays about a millisecond.
RARITY_SAMPLE = 1000
# At most this many of a query's trigrams are compared for rarity (a 200-character query has ~200).
RARITY_CANDIDATES = 12

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
    codes = [ord(ch) for ch in text]
    separator = ord(_PART_SEPARATOR)
    keys: set[int] = set()
    for first, second, third in zip(codes, codes[1:], codes[2:], strict=False):
        if separator not in (first, second, third):
            keys.add((first << 42) | (second << 21) | third)
    return keys


def _vendor(conn: BaseDatabaseWrapper | None = None) -> str:
    return (conn or connection).vendor


# Writes ---------------------------------------------------------------------------------------


def _indexed(message: Message) -> bool:
    # System messages (kind "system", once the model has it) record changes to the chat: not searchable.
    return getattr(message, "kind", "text") == "text" and not message.deleted


def _message_document(message: Message) -> str:
    attachment = message.attachment
    return document(message.content, attachment.original_name if attachment is not None else None)


def index_new(message: Message) -> None:
    """Index a message just inserted (inside the service's transaction: a rollback drops it too)."""
    if _indexed(message):
        _insert(connection, [(message.pk, message.chat_id, _message_document(message))])


def reindex(message: Message) -> None:
    """The message's text changed (an edit): its old entry goes, its new one comes."""
    unindex(message.pk)
    index_new(message)


def unindex(message_id: int) -> None:
    """The message no longer matches anything (deleted)."""
    _delete(connection, message_id)


def _insert(conn: BaseDatabaseWrapper, rows: Sequence[tuple[int, int, str]]) -> None:
    """Index (message_id, chat_id, document) rows, each statement a batch."""
    rows = [row for row in rows if row[2]]
    if not rows:
        return
    with conn.cursor() as cursor:
        if _vendor(conn) == "sqlite":
            cursor.executemany(f"INSERT INTO {FTS_TABLE} (rowid, chat_id, body) VALUES (%s, %s, %s)", rows)
            return
        text_marks = ", ".join(["(%s, %s, %s)"] * len(rows))
        cursor.execute(
            f"INSERT INTO {TEXT_TABLE} (message_id, chat_id, body) VALUES {text_marks}",
            [value for row in rows for value in row],
        )
        postings = [(key, message_id, chat_id) for message_id, chat_id, body in rows for key in trigram_keys(body)]
        if postings:
            marks = ", ".join(["(%s, %s, %s)"] * len(postings))
            cursor.execute(
                f"INSERT INTO {TRIGRAM_TABLE} (trigram, message_id, chat_id) VALUES {marks}",
                [value for posting in postings for value in posting],
            )


def _delete(conn: BaseDatabaseWrapper, message_id: int) -> None:
    with conn.cursor() as cursor:
        if _vendor(conn) == "sqlite":
            cursor.execute(f"DELETE FROM {FTS_TABLE} WHERE rowid = %s", [message_id])
            return
        # The postings are found by the trigrams of the stored document: point deletes on the
        # primary key, no second index on message_id for every send to maintain.
        cursor.execute(f"SELECT body FROM {TEXT_TABLE} WHERE message_id = %s", [message_id])
        row = cursor.fetchone()
        if row is None:
            return
        keys = sorted(trigram_keys(row[0]))
        if keys:
            marks = ", ".join(["%s"] * len(keys))
            cursor.execute(
                f"DELETE FROM {TRIGRAM_TABLE} WHERE message_id = %s AND trigram IN ({marks})", [message_id, *keys]
            )
        cursor.execute(f"DELETE FROM {TEXT_TABLE} WHERE message_id = %s", [message_id])


def rebuild(conn: BaseDatabaseWrapper | None = None, *, batch: int = 2000) -> int:
    """Index every message that is not deleted, from nothing (migration 0004 on an existing database,
    bench/search.py after a bulk fill). Returns how many were indexed."""
    conn = conn or connection
    with conn.cursor() as cursor:
        if _vendor(conn) == "sqlite":
            cursor.execute(f"DELETE FROM {FTS_TABLE}")
        else:
            cursor.execute(f"DELETE FROM {TRIGRAM_TABLE}")
            cursor.execute(f"DELETE FROM {TEXT_TABLE}")
    quote = conn.ops.quote_name
    messages, attachments = quote(Message._meta.db_table), quote(Attachment._meta.db_table)
    # Only text messages once a `kind` column exists (system messages are never indexed).
    with conn.cursor() as cursor:
        columns = [c.name for c in conn.introspection.get_table_description(cursor, Message._meta.db_table)]
    kind = " AND m.kind = 'text'" if "kind" in columns else ""
    done, after = 0, 0
    while True:
        with conn.cursor() as cursor:
            cursor.execute(
                f"SELECT m.id, m.chat_id, m.content, a.original_name FROM {messages} m "
                f"LEFT JOIN {attachments} a ON a.id = m.attachment_id "
                f"WHERE m.id > %s AND m.deleted = %s{kind} ORDER BY m.id LIMIT %s",
                [after, False, batch],
            )
            rows = cursor.fetchall()
        if not rows:
            return done
        _insert(conn, [(message_id, chat_id, document(content, name)) for message_id, chat_id, content, name in rows])
        done += len(rows)
        after = rows[-1][0]


# Reads ----------------------------------------------------------------------------------------


def matching_ids(*, query: str, chat_ids: Iterable[int], before: int | None, limit: int) -> list[int]:
    """Ids of messages in these chats whose document holds the folded query, newest first (at most
    `limit`). `query` is folded already and at least MIN_QUERY_LENGTH long. One statement on SQLite,
    two on MariaDB (the rarest trigram is picked first)."""
    chats = list(chat_ids)
    if not chats:
        return []
    if _vendor() == "sqlite":
        return _matching_ids_fts(query, chats, before, limit)
    return _matching_ids_trigrams(query, chats, before, limit)


def _matching_ids_fts(query: str, chats: list[int], before: int | None, limit: int) -> list[int]:
    phrase = '"' + query.replace('"', '""') + '"'
    chat_marks = ", ".join(["%s"] * len(chats))
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
        f"WHERE {FTS_TABLE} MATCH %s AND f.chat_id IN ({chat_marks}){below} AND m.deleted = %s "
        f"ORDER BY f.rowid DESC LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def _rarest(keys: list[int]) -> int:
    if len(keys) == 1:
        return keys[0]
    candidates = keys[:RARITY_CANDIDATES]
    counts = ", ".join(
        f"(SELECT COUNT(*) FROM (SELECT 1 FROM {TRIGRAM_TABLE} WHERE trigram = %s LIMIT {RARITY_SAMPLE}) s{i})"
        for i in range(len(candidates))
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {counts}", candidates)
        row = cursor.fetchone()
    return min(zip(row, candidates, strict=True))[1]


def _like_pattern(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _matching_ids_trigrams(query: str, chats: list[int], before: int | None, limit: int) -> list[int]:
    keys = sorted(trigram_keys(query))
    if not keys:
        return []
    chat_marks = ", ".join(["%s"] * len(chats))
    params: list[Any] = [_rarest(keys), *chats]
    below = ""
    if before is not None:
        below = " AND t.message_id < %s"
        params.append(before)
    # A query of three characters is its one trigram: the postings alone answer it, no document is
    # read. A longer one keeps the postings whose document holds it whole.
    holds = ""
    if len(query) > 3:
        holds = f" AND EXISTS (SELECT 1 FROM {TEXT_TABLE} s WHERE s.message_id = t.message_id AND s.body LIKE %s)"
        params.append(_like_pattern(query))
    params.append(limit)
    # The trigram's postings are walked backwards on the primary key (newest first), so the LIMIT ends
    # the walk; a candidate in the caller's chats costs one primary-key lookup at most. Deleted
    # messages have no postings (message_soft_delete removes them in its transaction); rows of
    # messages that are gone altogether (an account deleted) are dropped when the page is read.
    sql = (
        f"SELECT t.message_id FROM {TRIGRAM_TABLE} t "
        f"WHERE t.trigram = %s AND t.chat_id IN ({chat_marks}){below}{holds} "
        f"ORDER BY t.message_id DESC LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


# Schema (migration 0004) ----------------------------------------------------------------------

SQLITE_SCHEMA = [f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(body, chat_id UNINDEXED, tokenize='trigram')"]
MYSQL_SCHEMA = [
    f"CREATE TABLE {TEXT_TABLE} ("
    "message_id BIGINT NOT NULL PRIMARY KEY, chat_id BIGINT NOT NULL, "
    "body LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL) ENGINE=InnoDB",
    f"CREATE TABLE {TRIGRAM_TABLE} ("
    "trigram BIGINT NOT NULL, message_id BIGINT NOT NULL, chat_id BIGINT NOT NULL, "
    "PRIMARY KEY (trigram, message_id)) ENGINE=InnoDB",
]


def create_schema(conn: BaseDatabaseWrapper) -> None:
    statements = SQLITE_SCHEMA if _vendor(conn) == "sqlite" else MYSQL_SCHEMA
    with conn.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def drop_schema(conn: BaseDatabaseWrapper) -> None:
    tables = [FTS_TABLE] if _vendor(conn) == "sqlite" else [TRIGRAM_TABLE, TEXT_TABLE]
    with conn.cursor() as cursor:
        for table in tables:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
