from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import presence
from accounts.models import User
from chats.models import Chat, ChatUser, Message
from tests.factories import UserFactory, group_with


@pytest.fixture(scope="session", autouse=True)
def _sqlite_test_files_removed() -> Iterator[None]:
    """The embedded run's SQLite test database is a file (see messenger/settings.py): pytest-django
    deletes the file at the end, this its -wal and -shm companions (set up first, torn down last)."""
    yield
    database: dict[str, Any] = django_settings.DATABASES["default"]
    name = database.get("TEST", {}).get("NAME")
    if str(database["ENGINE"]).endswith("sqlite3") and name:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{name}{suffix}").unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def _clean_cache() -> None:
    # Throttle counters and presence live in the cache; each test starts from nothing, also after
    # a test that left presence not asking an unreachable Redis for a while.
    cache.clear()
    presence.forget_unreachable()


@pytest.fixture(autouse=True)
def _uploads_in_tmp(settings, tmp_path) -> None:
    settings.DATA_DIR = tmp_path
    settings.UPLOADS_DIR = tmp_path / "uploads"


def bearer(user: User) -> str:
    return f"Bearer {RefreshToken.for_user(user).access_token}"


@pytest.fixture
def make_client() -> Callable[[User | None], APIClient]:
    def make(user: User | None = None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=bearer(user))
        return client

    return make


@pytest.fixture
def user(db) -> User:
    return UserFactory.create(username="alice", display_name="Alice")


@pytest.fixture
def other_user(db) -> User:
    return UserFactory.create(username="bob", display_name="Bob")


@pytest.fixture
def api_client(user, make_client) -> APIClient:
    return make_client(user)


@pytest.fixture
def chat(user, other_user) -> Chat:
    """A group owned by `user` with `other_user` as a plain member."""
    return group_with(user, other_user, owner=user)


def db_state() -> dict[str, Any]:
    """Every row a request could write, to prove that a failed request changed nothing."""
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

    return {
        "users": list(
            User.objects.order_by("id").values_list("id", "username", "email", "display_name", "password", "is_active")
        ),
        "chats": list(
            Chat.objects.order_by("id").values_list(
                "id", "is_group", "title", "version", "last_activity_at", "direct_key"
            )
        ),
        "memberships": list(
            ChatUser.objects.order_by("id").values_list(
                "id", "chat_id", "user_id", "role", "last_read_id", "unread_count"
            )
        ),
        "messages": list(
            Message.objects.order_by("id").values_list(
                "id",
                "chat_id",
                "sender_id",
                "content",
                "attachment_id",
                "is_read",
                "client_id",
                "edited_at",
                "deleted",
                "version",
            )
        ),
        "outstanding_tokens": OutstandingToken.objects.count(),
        "blacklisted_tokens": BlacklistedToken.objects.count(),
    }


@pytest.fixture
def unchanged(db) -> Callable[[], AbstractContextManager[None]]:
    """`with unchanged(): client.post(...)` fails the test if the request wrote anything."""

    @contextmanager
    def check() -> Iterator[None]:
        before = db_state()
        yield
        assert db_state() == before, "a failed request changed the database"

    return check


@pytest.fixture
def set_online() -> Iterator[Callable[[User], None]]:
    """Mark a user online as an open socket on this process would; the claim is dropped after the test."""
    import inspect

    from asgiref.sync import async_to_sync

    from accounts import presence

    def call(transition: Callable[[int], Any], user_id: int) -> None:
        # The hub's transitions are coroutines (they run on its event loop).
        if inspect.iscoroutinefunction(transition):
            async_to_sync(transition)(user_id)
        else:
            transition(user_id)

    marked: list[int] = []

    def mark(user: User) -> None:
        call(presence.process_online, user.pk)
        marked.append(user.pk)

    yield mark
    for user_id in marked:
        call(presence.process_offline, user_id)


@pytest.fixture
def announced(monkeypatch) -> list[tuple[str, dict[str, Any]]]:
    """What services published after their commits: (group, envelope), in order (none is sent).

    Each envelope's text is the frame as sockets receive it; `frames(announced)` decodes them.
    """
    from chats.realtime import outbox

    published: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(outbox, "publish_from_thread", published.extend)
    return published


def frames(envelopes: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """(group, decoded frame) of published envelopes."""
    import json

    return [(group, json.loads(envelope["text"])) for group, envelope in envelopes]
