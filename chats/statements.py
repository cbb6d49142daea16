"""The send path's statements, written in SQL.

`services.message_create` is what every message costs, and on the bench machine Django's
query building took more time than MariaDB took to run the statements: py-spy put the ORM's
compile at over 1 ms a statement against ~0.3 ms for the round trip. These four are fixed
statements with parameters, portable between SQLite and MySQL/MariaDB; everything else in the
services stays with the ORM. Table and column names come from the models' metadata.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from accounts.models import User
from chats.models import Chat, ChatUser, Message


def _table(model: type[Chat | ChatUser | Message | User]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


@dataclass(frozen=True, slots=True)
class LockedMembership:
    chat_version: int
    membership_id: int
    unread_count: int
    last_read_id: int
    # The sender's message in this chat with this send's client_id, if they sent one before.
    first_message_id: int | None


def lock_chat_for_member(chat_id: int, user_id: int, client_id: str | None) -> LockedMembership | None:
    """Take the chat's row lock and read the sender's membership under it, in one statement, with
    the id of the sender's message in this chat that already carries `client_id` (None: there is none;
    the same client_id in another chat is another send).

    None when the chat is missing or the user is not a member. The read is a locking one, so
    it sees a removal that committed while this send waited (removals take the same lock).
    """
    for_update = " FOR UPDATE" if connection.features.has_select_for_update else ""
    sql = (
        f"SELECT c.version, m.id, m.unread_count, m.last_read_id, "
        f"(SELECT f.id FROM {_table(Message)} f WHERE f.sender_id = %s AND f.chat_id = c.id AND f.client_id = %s) "
        f"FROM {_table(Chat)} c INNER JOIN {_table(ChatUser)} m ON m.chat_id = c.id "
        f"WHERE c.id = %s AND m.user_id = %s{for_update}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [user_id, client_id, chat_id, user_id])
        row = cursor.fetchone()
    return LockedMembership(*row) if row is not None else None


def insert_message(message: Message) -> None:
    """INSERT the new message's row (every concrete column but the id) and set its id.

    What `message.save(force_insert=True)` does, as one fixed statement: the ORM's insert
    compiler was the largest single cost of a socket send in bench/ (py-spy: a quarter of the
    worker thread's time). Values are prepared by each field, as the ORM prepares them.
    """
    fields = [f for f in Message._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    values = [f.get_db_prep_save(f.pre_save(message, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {_table(Message)} ({columns}) VALUES ({placeholders})", values)
        message.pk = cursor.lastrowid
    message._state.adding = False
    message._state.db = connection.alias


def chat_advance(chat_id: int, *, version: int, at: datetime, last_message_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_table(Chat)} SET version = %s, last_activity_at = %s, last_message_id = %s WHERE id = %s",
            [version, connection.ops.adapt_datetimefield_value(at), last_message_id, chat_id],
        )


def members_count_new_message(chat_id: int, *, sender_id: int, message_id: int) -> None:
    """One more unread for every member but the sender; the sender has read up to the message."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_table(ChatUser)} SET "
            "unread_count = CASE WHEN user_id = %s THEN 0 ELSE unread_count + 1 END, "
            "last_read_id = CASE WHEN user_id = %s THEN %s ELSE last_read_id END "
            "WHERE chat_id = %s",
            [sender_id, sender_id, message_id, chat_id],
        )


MemberRow = tuple[int, str, int, int, bool, int, str, str, Any]


def member_rows(chat_ids: list[int]) -> list[MemberRow]:
    """The members of these chats in joining order, as the chat's rendering reads them:
    (chat_id, role, unread_count, last_read_id, muted, user_id, username, display_name, last_seen).

    Rendering a chat reads every member: through the ORM's values_list, 1,000 members cost ~9 µs a
    row in Python (bench/ big group: most of a rename's answer); this way ~1 µs. `last_seen` is
    converted as the ORM converts it (aware, in UTC).
    """
    if not chat_ids:
        return []
    members, users = _table(ChatUser), _table(User)
    marks = ", ".join(["%s"] * len(chat_ids))
    sql = (
        f"SELECT m.chat_id, m.role, m.unread_count, m.last_read_id, m.muted, u.id, u.username, u.display_name, "
        f"u.last_seen "
        f"FROM {members} m INNER JOIN {users} u ON u.id = m.user_id WHERE m.chat_id IN ({marks}) ORDER BY m.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, chat_ids)
        rows = cursor.fetchall()
    # The MySQL and SQLite backends' own conversion (a driver that returns aware values has none).
    convert = getattr(connection.ops, "convert_datetimefield_value", None)

    def last_seen(value: Any) -> Any:
        return convert(value, None, connection) if convert is not None and value is not None else value

    # `muted` as a bool: MySQL's driver gives 0/1.
    return [(*row[:4], bool(row[4]), *row[5:8], last_seen(row[8])) for row in rows]
