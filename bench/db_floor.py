"""The database's own floor for persisted messages: a send's statements, and nothing else.

On one connection (the bench's MariaDB database, or SQLite without MySQL), each message is what
the messenger's send does in SQL (chats/services.py `_message_create`, chats/statements.py), for
a sender who is a member and gives a client_id, as the bench's senders do:

1. `SELECT c.version, m.id, m.unread_count, m.last_read_id FROM chats_chat c INNER JOIN
   chats_chatuser m ON m.chat_id = c.id WHERE c.id = %s AND m.user_id = %s FOR UPDATE`
   (the chat's row lock, the sender's membership read under it);
2. `SELECT id FROM chats_message WHERE sender_id = %s AND client_id = %s` (a repeated client_id);
3. `INSERT INTO chats_message (...)` with the version after the chat's;
4. `UPDATE chats_chat SET version = %s, last_activity_at = %s, last_message_id = %s WHERE id = %s`;
5. `UPDATE chats_chatuser SET unread_count = CASE ..., last_read_id = CASE ... WHERE chat_id = %s`
   (one more unread for every member but the sender).

No Python around them but the loop: no ORM, no serializer, no savepoints, no events. Measured two
ways, for `--seconds` each (taking turns a second at a time): a commit per message, and `--batch`
(50) messages per commit, round-robin over the multi-chat scenario's 100 chats and their senders
(from seed.json). The rows it writes stay (content `floor <n>`, client_ids unique to the run):
versions move on as after any send, and the messenger continues from them.

    DJANGO_SETTINGS_MODULE=messenger.settings python -m bench.db_floor --seed seed.json --out floor.json

The statements are written out here, not imported from chats/statements.py, so the floor stays
what the database can do whatever the server's code becomes; only table names and the message
table's other columns (with their defaults) come from the models' metadata.
"""

import argparse
import json
import os
import secrets
import time
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "messenger.settings")
django.setup()

from django.db import connection, transaction  # noqa: E402
from django.db.models import Model  # noqa: E402
from django.utils import timezone  # noqa: E402

from chats.models import Chat, ChatUser, Message  # noqa: E402

MAX_MESSAGES = 2_000_000  # every loop is bounded in count as well as in time


def _table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _message_columns() -> tuple[list[str], dict[str, Any]]:
    """The message table's columns, and a value for each one a send does not set itself.

    A send sets the columns below; any other concrete column (the model may grow) gets its
    default, as Django's INSERT would give it.
    """
    sent = {"chat", "sender", "content", "attachment", "is_read", "client_id", "created_at"}
    sent |= {"edited_at", "deleted", "version"}
    columns: list[str] = []
    defaults: dict[str, Any] = {}
    for field in Message._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(field.column)
        if field.name not in sent:
            defaults[field.column] = field.get_db_prep_save(field.get_default(), connection)
    return columns, defaults


class Floor:
    def __init__(self, chats: list[tuple[int, int]]) -> None:
        self.chats = chats  # (chat id, sender's user id)
        self.run = secrets.token_hex(4)
        self.count = 0
        for_update = " FOR UPDATE" if connection.features.has_select_for_update else ""
        chat, member, message = _table(Chat), _table(ChatUser), _table(Message)
        self.lock_sql = (
            f"SELECT c.version, m.id, m.unread_count, m.last_read_id FROM {chat} c "
            f"INNER JOIN {member} m ON m.chat_id = c.id WHERE c.id = %s AND m.user_id = %s{for_update}"
        )
        self.client_id_sql = f"SELECT id FROM {message} WHERE sender_id = %s AND client_id = %s"
        self.columns, self.defaults = _message_columns()
        names = ", ".join(connection.ops.quote_name(c) for c in self.columns)
        marks = ", ".join(["%s"] * len(self.columns))
        self.insert_sql = f"INSERT INTO {message} ({names}) VALUES ({marks})"
        self.advance_sql = f"UPDATE {chat} SET version = %s, last_activity_at = %s, last_message_id = %s WHERE id = %s"
        self.unread_sql = (
            f"UPDATE {member} SET "
            "unread_count = CASE WHEN user_id = %s THEN 0 ELSE unread_count + 1 END, "
            "last_read_id = CASE WHEN user_id = %s THEN %s ELSE last_read_id END "
            "WHERE chat_id = %s"
        )

    def send(self, cursor: Any) -> None:
        chat_id, sender_id = self.chats[self.count % len(self.chats)]
        self.count += 1
        client_id = f"floor-{self.run}-{self.count}"
        cursor.execute(self.lock_sql, [chat_id, sender_id])
        row = cursor.fetchone()
        if row is None:
            raise SystemExit(f"user {sender_id} is not a member of chat {chat_id}")
        version = row[0] + 1
        cursor.execute(self.client_id_sql, [sender_id, client_id])
        if cursor.fetchone() is not None:
            raise SystemExit(f"client_id {client_id} exists already")
        at = connection.ops.adapt_datetimefield_value(timezone.now())
        values = {
            "chat_id": chat_id,
            "sender_id": sender_id,
            "content": f"floor {self.count}",
            "attachment_id": None,
            "is_read": False,
            "client_id": client_id,
            "created_at": at,
            "edited_at": None,
            "deleted": False,
            "version": version,
            **self.defaults,
        }
        cursor.execute(self.insert_sql, [values[c] for c in self.columns])
        message_id = connection.ops.last_insert_id(cursor, Message._meta.db_table, Message._meta.pk.column)
        cursor.execute(self.advance_sql, [version, at, message_id, chat_id])
        cursor.execute(self.unread_sql, [sender_id, sender_id, message_id, chat_id])


def run_for(floor: Floor, batch: int, duration: float) -> tuple[int, float]:
    """(messages, seconds): sends `batch` to a commit for about `duration` seconds."""
    sent = 0
    started = time.perf_counter()
    deadline = started + duration
    with connection.cursor() as cursor:
        while time.perf_counter() < deadline and sent < MAX_MESSAGES:
            with transaction.atomic():
                for _ in range(batch):
                    floor.send(cursor)
            sent += batch
    return sent, time.perf_counter() - started


def measure(floor: Floor, batches: dict[str, int], seconds: float) -> dict[str, dict[str, Any]]:
    """Messages persisted per second of each way, for `seconds` each.

    The ways take turns, a second at a time, so that other jobs on a shared machine weigh on
    each alike (a run measured after the other saw twice the rate of it, or half, here).
    """
    for batch in batches.values():
        run_for(floor, batch, 0.25)  # warm-up: connection, plans, buffer pool
    rounds = max(1, round(seconds))
    totals = {name: [0, 0.0] for name in batches}
    for _ in range(rounds):
        for name, batch in batches.items():
            sent, elapsed = run_for(floor, batch, seconds / rounds)
            totals[name][0] += sent
            totals[name][1] += elapsed
    return {
        name: {
            "batch": batches[name],
            "messages": int(sent),
            "seconds": elapsed,
            "messages_per_s": sent / elapsed,
        }
        for name, (sent, elapsed) in totals.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", required=True, help="the bench's seed.json (its multichat chats)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds each way is measured (default 5)")
    parser.add_argument("--batch", type=int, default=50, help="messages a commit in the batched way (default 50)")
    args = parser.parse_args()
    with open(args.seed) as seed_file:
        seed = json.load(seed_file)
    chats = [(c["chat_id"], c["sender_id"]) for c in seed["multichat"]["chats"]]
    floor = Floor(chats)
    results: dict[str, Any] = {"database": connection.vendor, "statements_per_message": 5, "chats": len(chats)}
    results.update(measure(floor, {"commit_each": 1, "batched": args.batch}, args.seconds))
    for name in ("commit_each", "batched"):
        figures = results[name]
        print(
            f"  {name:12} {figures['messages_per_s']:8.0f} messages/s "
            f"({figures['messages']} in {figures['seconds']:.1f} s, {figures['batch']} a commit)",
            flush=True,
        )
    with open(args.out, "w") as out:
        json.dump(results, out)


if __name__ == "__main__":
    main()
