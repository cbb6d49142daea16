"""Input no client should send still gets a 4xx in the contract's shape, never a 500, and writes nothing."""

import json

import pytest

from tests.factories import UserFactory, message_in

# Beyond a 64-bit signed integer: no row can have such an id (SQLite would overflow in the query).
HUGE = 2**70


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/chats/{huge}"),
        ("patch", "/api/chats/{huge}"),
        ("get", "/api/chats/{huge}/messages"),
        ("post", "/api/chats/{huge}/messages"),
        ("patch", "/api/chats/{huge}/messages/1"),
        ("patch", "/api/chats/{chat}/messages/{huge}"),
        ("delete", "/api/chats/{chat}/messages/{huge}"),
        ("post", "/api/chats/{huge}/members"),
        ("delete", "/api/chats/{chat}/members/{huge}"),
        ("patch", "/api/chats/{chat}/members/{huge}"),
        ("post", "/api/chats/{huge}/read"),
        ("get", "/api/users/{huge}"),
    ],
)
def test_an_id_beyond_any_row_in_the_path_answers_404(api_client, chat, unchanged, method, path):
    # given
    url = path.format(huge=HUGE, chat=chat.id)
    body = {"content": "x", "title": "x", "user_id": 1, "message_id": 1, "role": "admin"}
    # when
    with unchanged():
        r = getattr(api_client, method)(url, body, format="json")
    # then
    assert r.status_code == 404, r.content
    assert "detail" in r.json()


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/api/chats", {"is_group": False, "member_ids": [HUGE]}, "member_ids"),
        ("/api/chats", {"is_group": True, "title": "x", "member_ids": [HUGE]}, "member_ids"),
        ("/api/chats/{chat}/members", {"user_id": HUGE}, "user_id"),
        ("/api/chats/{chat}/read", {"message_id": HUGE}, "message_id"),
        ("/api/chats/{chat}/messages", {"content": "x", "attachment_id": HUGE}, "attachment_id"),
    ],
)
def test_an_id_beyond_any_row_in_the_body_answers_400(api_client, chat, unchanged, path, body, field):
    # when
    with unchanged():
        r = api_client.post(path.format(chat=chat.id), body, format="json")
    # then
    assert r.status_code == 400, r.content
    assert field in r.json()


@pytest.mark.parametrize("param", ["before", "since"])
def test_a_history_cursor_beyond_any_row_answers_400(api_client, chat, user, param):
    # given
    message_in(chat, user)
    # when
    r = api_client.get(f"/api/chats/{chat.id}/messages", {param: HUGE})
    # then
    assert r.status_code == 400, r.content
    assert param in r.json()


def test_an_oversize_json_body_answers_413_in_the_contracts_shape(api_client, chat, unchanged, settings):
    # given: bodies are capped by DATA_UPLOAD_MAX_MEMORY_SIZE (1 MB)
    content = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    # when
    with unchanged():
        r = api_client.post(f"/api/chats/{chat.id}/messages", {"content": content}, format="json")
    # then
    assert r.status_code == 413, r.content
    assert "detail" in r.json()


def test_a_body_that_is_not_an_object_answers_400(api_client, chat, unchanged):
    # when
    with unchanged():
        r = api_client.post(f"/api/chats/{chat.id}/messages", [1, 2], format="json")
    # then
    assert r.status_code == 400, r.content


def test_malformed_json_answers_400_in_the_contracts_shape(api_client, chat, unchanged):
    # when
    with unchanged():
        r = api_client.post(f"/api/chats/{chat.id}/messages", "{oops", content_type="application/json")
    # then
    assert r.status_code == 400, r.content
    assert "detail" in r.json()


@pytest.mark.parametrize(
    "content, message",
    [("a\x00b", "Null characters are not allowed."), ("a\ud800b", "Surrogate characters are not allowed: U+D800.")],
    ids=["nul", "lone-surrogate"],
)
def test_content_that_no_database_stores_answers_400(api_client, chat, unchanged, content, message):
    # given: json.dumps escapes the lone surrogate as \ud800, as a sloppy client would send it
    body = json.dumps({"content": content})
    # when
    with unchanged():
        r = api_client.post(f"/api/chats/{chat.id}/messages", body, content_type="application/json")
    # then
    assert r.status_code == 400, r.content
    assert r.json()["content"] == [message]


def test_an_unsupported_media_type_answers_415(api_client, chat, unchanged):
    # when
    with unchanged():
        r = api_client.post(f"/api/chats/{chat.id}/messages", "content=hi", content_type="text/plain")
    # then
    assert r.status_code == 415, r.content


# Unknown fields are ignored, on every write endpoint alike; the known ones still apply.
@pytest.mark.parametrize(
    "method, path, body, status",
    [
        ("post", "/api/chats", {"is_group": True, "title": "t", "member_ids": []}, 201),
        ("patch", "/api/chats/{chat}", {"title": "t"}, 200),
        ("post", "/api/chats/{chat}/members", {"user_id": "{newcomer}"}, 201),
        ("patch", "/api/chats/{chat}/members/{other}", {"role": "admin"}, 200),
        ("post", "/api/chats/{chat}/messages", {"content": "hi"}, 201),
        ("patch", "/api/chats/{chat}/messages/{message}", {"content": "edited"}, 200),
        ("post", "/api/chats/{chat}/read", {"message_id": "{message}"}, 200),
        ("patch", "/api/auth/me", {"display_name": "A"}, 200),
    ],
)
def test_unknown_fields_are_ignored_everywhere(api_client, chat, user, other_user, method, path, body, status):
    # given
    ids = {
        "chat": chat.id,
        "other": other_user.id,
        "newcomer": UserFactory.create().id,
        "message": message_in(chat, user).id,
    }
    resolved = {
        key: int(value.format(**ids)) if isinstance(value, str) and value.startswith("{") else value
        for key, value in body.items()
    }
    # when
    r = getattr(api_client, method)(path.format(**ids), {**resolved, "no_such_field": 1, "id": 424242}, format="json")
    # then
    assert r.status_code == status, r.content
    assert b"424242" not in r.content


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("post", "/api/chats/{chat}/messages", {"content": "x" * 4001}),
        ("post", "/api/chats/{chat}/messages", {"content": "   "}),
        ("patch", "/api/chats/{chat}", {"title": ""}),
        ("post", "/api/chats/{chat}/members", {"user_id": 999_999}),
        ("post", "/api/chats/{chat}/read", {"message_id": 999_999}),
        ("post", "/api/chats", {"is_group": True, "title": "x", "member_ids": [999_999]}),
    ],
)
def test_a_failed_write_announces_nothing(api_client, chat, django_capture_on_commit_callbacks, method, path, body):
    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        r = getattr(api_client, method)(path.format(chat=chat.id), body, format="json")
    # then
    assert r.status_code == 400, r.content
    assert callbacks == []


@pytest.mark.parametrize("role", ["member", "outsider"])
def test_a_refused_write_announces_nothing(client_for, team, django_capture_on_commit_callbacks, role):
    # given
    message = message_in(team.chat, team.owner, "owner's")
    client = client_for(team.user(role))
    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        renamed = client.patch(f"/api/chats/{team.chat.id}", {"title": "x"}, format="json")
        deleted = client.delete(f"/api/chats/{team.chat.id}/messages/{message.id}")
    # then
    assert (renamed.status_code, deleted.status_code) == ((403, 403) if role == "member" else (404, 404))
    assert callbacks == []
