"""Full Unicode survives the database: 4-byte UTF-8 (emoji) in content, title and display_name.

The round trips run on every backend; the `mysql` ones check MariaDB's columns are utf8mb4 too.
"""

import os

import pytest
from django.db import connection

from accounts.models import User
from chats.models import Chat, Message

EMOJI = "Family 👨‍👩‍👧‍👦, flags 🇺🇦🇯🇵, math \U0001d4b3, CJK 你好, RTL שלום, skin 👋🏽"

needs_mysql = pytest.mark.skipif(not os.environ.get("DATABASE_URL"), reason="needs MariaDB/MySQL (DATABASE_URL)")


def test_emoji_round_trip_in_message_content(api_client, chat):
    # when
    r = api_client.post(f"/api/chats/{chat.id}/messages", {"content": EMOJI}, format="json")
    # then
    assert r.status_code == 201, r.content
    assert Message.objects.get(pk=r.json()["id"]).content == EMOJI
    history = api_client.get(f"/api/chats/{chat.id}/messages").json()["results"]
    assert history[0]["content"] == EMOJI


def test_emoji_round_trip_in_an_edit(api_client, chat):
    # given
    message = api_client.post(f"/api/chats/{chat.id}/messages", {"content": "plain"}, format="json").json()
    # when
    r = api_client.patch(f"/api/chats/{chat.id}/messages/{message['id']}", {"content": EMOJI}, format="json")
    # then
    assert r.status_code == 200, r.content
    assert Message.objects.get(pk=message["id"]).content == EMOJI


def test_emoji_round_trip_in_a_group_title(api_client, other_user):
    # when
    r = api_client.post(
        "/api/chats", {"is_group": True, "title": "🎉 Party 🥳", "member_ids": [other_user.id]}, format="json"
    )
    # then
    assert r.status_code == 201, r.content
    assert Chat.objects.get(pk=r.json()["id"]).title == "🎉 Party 🥳"
    assert api_client.get(f"/api/chats/{r.json()['id']}").json()["title"] == "🎉 Party 🥳"


def test_emoji_round_trip_in_a_display_name(api_client, user):
    # when
    r = api_client.patch("/api/auth/me", {"display_name": "Alice 🦊"}, format="json")
    # then
    assert r.status_code == 200, r.content
    assert User.objects.get(pk=user.pk).display_name == "Alice 🦊"
    assert api_client.get("/api/auth/me").json()["display_name"] == "Alice 🦊"


def test_emoji_display_name_at_registration(client, db):
    # when
    r = client.post(
        "/api/auth/register",
        {"username": "fox", "email": "fox@example.com", "password": "Correct-Horse-42", "display_name": "🦊 Fox"},
        content_type="application/json",
    )
    # then
    assert r.status_code == 201, r.content
    assert User.objects.get(username="fox").display_name == "🦊 Fox"


def test_search_finds_a_display_name_with_emoji(api_client, other_user):
    # given
    other_user.display_name = "Bob 🐢"
    other_user.save(update_fields=["display_name"])
    # when
    r = api_client.get("/api/users/search", {"q": "🐢"})
    # then
    assert r.status_code == 200, r.content
    assert [u["id"] for u in r.json()["results"]] == [other_user.id]


@pytest.mark.parametrize(
    "table, column",
    [
        ("chats_message", "content"),
        ("chats_chat", "title"),
        ("accounts_user", "display_name"),
        ("accounts_user", "username"),
    ],
)
@pytest.mark.mysql
@needs_mysql
@pytest.mark.usefixtures("db")
def test_mysql_text_columns_are_utf8mb4(table, column):
    # when
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT CHARACTER_SET_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND COLUMN_NAME = %s",
            [table, column],
        )
        (charset,) = cursor.fetchone()
    # then
    assert charset == "utf8mb4"


@pytest.mark.mysql
@needs_mysql
def test_mysql_stores_emoji_as_four_bytes(chat, user):
    # given
    message = Message.objects.create(chat=chat, sender=user, content="🦊", version=1)
    # when
    with connection.cursor() as cursor:
        cursor.execute("SELECT LENGTH(content), CHAR_LENGTH(content) FROM chats_message WHERE id = %s", [message.id])
        byte_length, char_length = cursor.fetchone()
    # then
    assert (byte_length, char_length) == (4, 1)
