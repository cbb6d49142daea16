"""A write that InnoDB rolls back as a deadlock's victim runs again, once, and loses nothing.

The deadlock is raised where the database would raise it, inside the write's transaction after
rows were written, so a retry that kept anything of the failed attempt would show here. The real
race that produced one in CI (uploads racing the cleanup of their blob) is in
tests/media/test_concurrent_uploads.py.
"""

import json
import os
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError, transaction

from accounts import services as account_services
from chats import services as chat_services
from chats import statements
from chats.models import Chat, ChatUser, Message
from chats.realtime import outbox
from media import services as media_services
from media import store
from media.models import Attachment, Blob
from messenger import deadlocks
from tests.concurrency import run_together
from tests.media import images

pytestmark = pytest.mark.django_db(transaction=True)


def deadlock() -> OperationalError:
    return OperationalError(deadlocks.ER_LOCK_DEADLOCK, "Deadlock found when trying to get lock")


def failing_first(real: Any, times: int = 1, error: Exception | None = None) -> Any:
    """`real`, except that its first `times` calls raise `error` (a deadlock) instead."""
    calls = {"n": 0}

    def call(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] <= times:
            raise error or deadlock()
        return real(*args, **kwargs)

    call.calls = calls  # type: ignore[attr-defined]
    return call


# The helper ------------------------------------------------------------------------------


def test_a_transaction_that_lost_a_deadlock_runs_again_and_keeps_only_the_second_attempt():
    # given: a write whose first attempt stores a row, then is chosen as a deadlock's victim
    attempts: list[int] = []
    announced: list[int] = []

    @deadlocks.retry_deadlocks
    def write() -> int:
        with transaction.atomic():
            attempts.append(1)
            chat = Chat.objects.create(is_group=True, title=f"attempt {len(attempts)}")
            transaction.on_commit(lambda: announced.append(chat.pk))
            if len(attempts) == 1:
                raise deadlock()
            return chat.pk

    # when
    chat_id = write()
    # then
    assert len(attempts) == 2
    assert list(Chat.objects.values_list("title", flat=True)) == ["attempt 2"]
    assert announced == [chat_id]  # the rolled-back attempt announced nothing


def always_raising(error: Exception) -> tuple[Callable[[], None], list[int]]:
    """A retried write that raises `error` every time, and the list of its calls."""
    calls: list[int] = []

    @deadlocks.retry_deadlocks
    def write() -> None:
        calls.append(1)
        raise error

    return write, calls


def test_a_deadlock_inside_a_callers_transaction_goes_up_to_the_caller():
    # given: InnoDB rolled back the caller's whole transaction: running only the inner part again would be wrong
    write, calls = always_raising(deadlock())
    # when / then
    with pytest.raises(OperationalError), transaction.atomic():
        write()
    assert len(calls) == 1


def test_other_database_errors_are_not_retried():
    write, calls = always_raising(OperationalError(2006, "MySQL server has gone away"))
    with pytest.raises(OperationalError):
        write()
    assert len(calls) == 1


def test_a_write_that_found_sqlite_locked_runs_again():
    # given: SQLite's answer to a writer that waited out the busy timeout for the write lock
    calls: list[int] = []

    @deadlocks.retry_deadlocks
    def write() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("database is locked")
        return "stored"

    # when / then
    assert write() == "stored"
    assert len(calls) == 2


def test_a_locked_sqlite_table_is_not_taken_for_the_locked_database():
    write, calls = always_raising(OperationalError("database table is locked"))
    with pytest.raises(OperationalError):
        write()
    assert len(calls) == 1


def test_a_registration_hashes_the_password_before_its_transaction(monkeypatch):
    # given: a hasher that notes whether a transaction is open when it runs
    from django.contrib.auth.hashers import MD5PasswordHasher

    in_transaction: list[bool] = []
    real_encode = MD5PasswordHasher.encode

    def encode(self: MD5PasswordHasher, password: str, salt: str) -> str:
        in_transaction.append(transaction.get_connection().in_atomic_block)
        return real_encode(self, password, salt)

    monkeypatch.setattr(MD5PasswordHasher, "encode", encode)
    # when
    account_services.user_create(username="hasher", email="hasher@example.com", password="a long passphrase 42")
    # then: on SQLite the transaction holds the one write lock; hashing while holding it queued every writer
    assert in_transaction == [False]


def test_a_write_that_keeps_losing_gives_up_after_the_last_attempt():
    write, calls = always_raising(deadlock())
    with pytest.raises(OperationalError) as raised:
        write()
    assert deadlocks.is_deadlock(raised.value)
    assert len(calls) == deadlocks.ATTEMPTS


# Every write path ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "service",
    [
        *(getattr(chat_services, name) for name in ("chat_update", "chat_member_add", "chat_member_remove")),
        *(getattr(chat_services, name) for name in ("chat_member_set_role", "message_create", "message_edit")),
        *(getattr(chat_services, name) for name in ("message_delete", "message_soft_delete", "chat_mark_read")),
        chat_services._group_create,
        chat_services._direct_get_or_create,
        account_services._user_insert,
        account_services.user_update,
        media_services._attachment_save,
        media_services.blob_delete_if_unreferenced,
        media_services.attachment_delete_if_unattached,
    ],
    ids=lambda service: service.__qualname__,
)
def test_every_write_that_opens_its_own_transaction_runs_again_after_a_deadlock(service):
    assert service.__code__ is deadlocks.retry_deadlocks(len).__code__, f"{service.__qualname__} is not retried"


# The write paths that race on a unique key -------------------------------------------------


def test_an_upload_that_lost_a_deadlock_is_stored_once(api_client, user, monkeypatch):
    # given: the first attempt fails after its Blob and Attachment rows were written
    monkeypatch.setattr(store, "commit", failing_first(store.commit))
    # when
    r = api_client.post(
        "/api/attachments", {"file": SimpleUploadedFile("a.png", images.png(), "image/png")}, format="multipart"
    )
    # then
    assert r.status_code == 201, r.content
    assert Blob.objects.count() == 1
    assert list(Attachment.objects.values_list("id", flat=True)) == [r.json()["id"]]
    assert [blob.sha256 for blob in store.iter_blobs()] == [r.json()["sha256"]]
    assert list(store.iter_temp_files()) == []


def test_a_direct_chat_creation_that_lost_a_deadlock_creates_one_chat(api_client, user, other_user, monkeypatch):
    # given: the first attempt fails after the chat and its members were inserted
    monkeypatch.setattr(outbox, "record", failing_first(outbox.record))
    # when
    r = api_client.post("/api/chats", {"is_group": False, "member_ids": [other_user.id]}, format="json")
    # then
    assert r.status_code == 201, r.content
    assert list(Chat.objects.values_list("id", flat=True)) == [r.json()["id"]]
    assert ChatUser.objects.count() == 2


def test_a_message_send_that_lost_a_deadlock_is_stored_and_announced_once(api_client, chat, monkeypatch, announced):
    # given: the first attempt fails after the message row was inserted
    monkeypatch.setattr(statements, "chat_advance", failing_first(statements.chat_advance))
    # when
    r = api_client.post(f"/api/chats/{chat.id}/messages", {"content": "once", "client_id": "c1"}, format="json")
    # then
    assert r.status_code == 201, r.content
    assert list(Message.objects.values_list("content", "version")) == [("once", 1)]
    assert r.json()["version"] == 1
    # message.created once, from the attempt that committed
    assert [(envelope["event"], json.loads(envelope["text"])["message"]["id"]) for _, envelope in announced] == [
        ("message.created", r.json()["id"])
    ]


def test_a_send_that_keeps_losing_deadlocks_answers_503_and_stores_nothing(api_client, chat, monkeypatch):
    # given
    monkeypatch.setattr(statements, "chat_advance", failing_first(statements.chat_advance, times=deadlocks.ATTEMPTS))
    api_client.raise_request_exception = False
    # when
    r = api_client.post(f"/api/chats/{chat.id}/messages", {"content": "lost"}, format="json")
    # then: the database could not take it; the client may try again
    assert r.status_code == 503, r.content
    assert r["Retry-After"]
    assert not Message.objects.exists()


# A real deadlock -------------------------------------------------------------------------


@pytest.mark.mysql
@pytest.mark.skipif(not os.environ.get("DATABASE_URL"), reason="needs MariaDB (DATABASE_URL)")
def test_a_real_innodb_deadlock_is_recognised_and_its_victim_runs_again():
    # given: two writers locking the same two rows in opposite orders, each holding its first when it asks
    # for the second: InnoDB sees the cycle at once and rolls one of them back with error 1213
    first, second = Chat.objects.create(is_group=True, title="a"), Chat.objects.create(is_group=True, title="b")
    both_hold_one = threading.Barrier(2)
    attempts = [0, 0]

    @deadlocks.retry_deadlocks
    def write(index: int) -> None:
        attempts[index] += 1
        order = (first.pk, second.pk) if index == 0 else (second.pk, first.pk)
        with transaction.atomic():
            Chat.objects.select_for_update().get(pk=order[0])
            if attempts[index] == 1:
                both_hold_one.wait(timeout=30)
            Chat.objects.filter(pk=order[1]).update(title=f"written by {index}")

    # when
    run_together(2, write)
    # then: both writes stand; exactly one of them needed a second run
    assert sorted(attempts) == [1, 2]
    loser = attempts.index(2)
    assert Chat.objects.get(pk=(second.pk if loser == 0 else first.pk)).title == f"written by {loser}"
