"""GET /api/chats: the caller's chats, most recent activity first, cursor-paginated {results, next}."""

from chats.models import ChatUser, Message
from chats.services import message_create
from tests.factories import ChatUserFactory, UserFactory, direct_between, group_with, message_in

CHAT_FIELDS = {
    "id",
    "is_group",
    "title",
    "members",
    "my_role",
    "last_message",
    "unread_count",
    "last_read_id",
    "version",
    "created_at",
    "muted",
}


def test_chat_list_answers_a_page_of_the_callers_chats(api_client, user, other_user):
    # given
    group = group_with(user, other_user, owner=user)
    direct = direct_between(user, other_user)
    group_with(other_user, UserFactory.create())  # not the caller's
    # when
    r = api_client.get("/api/chats")
    # then
    assert r.status_code == 200, r.content
    assert set(r.json()) == {"results", "next"}
    assert {c["id"] for c in r.json()["results"]} == {group.id, direct.id}
    assert r.json()["next"] is None


def test_chat_list_renders_the_chat_shape(api_client, user, other_user):
    # given
    chat = group_with(user, other_user, owner=user, title="Book club")
    last = message_in(chat, other_user, "see you 🙂")
    # when
    r = api_client.get("/api/chats")
    # then
    item = r.json()["results"][0]
    assert set(item) == CHAT_FIELDS
    assert item["is_group"] is True
    assert item["title"] == "Book club"
    assert item["my_role"] == "owner"
    assert item["version"] == chat.version
    assert [(m["user"]["id"], m["role"]) for m in item["members"]] == [(user.id, "owner"), (other_user.id, "member")]
    assert set(item["members"][0]["user"]) == {"id", "username", "display_name", "is_online", "last_seen"}
    assert item["last_message"]["id"] == last.id
    assert item["last_message"]["content"] == "see you 🙂"


def test_a_direct_chat_has_no_title_and_two_members(api_client, user, other_user):
    # given
    direct_between(user, other_user)
    # when
    r = api_client.get("/api/chats")
    # then
    item = r.json()["results"][0]
    assert item["is_group"] is False
    assert item["title"] is None
    assert sorted(m["user"]["id"] for m in item["members"]) == sorted([user.id, other_user.id])


def test_a_chat_without_messages_has_no_last_message(api_client, chat):
    # when
    r = api_client.get("/api/chats")
    # then
    assert r.json()["results"][0]["last_message"] is None


def test_chat_list_puts_the_most_recent_activity_first(api_client, user, other_user):
    # given
    oldest = group_with(user, other_user, title="oldest")
    middle = group_with(user, other_user, title="middle")
    newest = group_with(user, other_user, title="newest")
    message_in(middle, other_user)
    message_in(oldest, other_user)  # oldest chat, newest message
    # when
    r = api_client.get("/api/chats")
    # then
    assert [c["id"] for c in r.json()["results"]] == [oldest.id, middle.id, newest.id]


def test_posting_a_message_moves_a_chat_to_the_top(api_client, user, other_user):
    # given
    first = group_with(user, other_user, title="first")
    group_with(user, other_user, title="second")
    # when
    api_client.post(f"/api/chats/{first.id}/messages", {"content": "bump"}, format="json")
    r = api_client.get("/api/chats")
    # then
    assert r.json()["results"][0]["id"] == first.id


def test_chat_list_paginates_with_a_cursor(api_client, user, other_user):
    # given
    chats = [group_with(user, other_user, title=f"g{n}") for n in range(5)]
    # when
    first = api_client.get("/api/chats", {"limit": 3})
    second = api_client.get(first.json()["next"])
    # then
    assert first.status_code == 200, first.content
    assert "cursor=" in first.json()["next"]
    assert second.status_code == 200, second.content
    assert second.json()["next"] is None
    seen = [c["id"] for c in first.json()["results"] + second.json()["results"]]
    assert seen == [c.id for c in reversed(chats)]


def test_chat_list_has_a_default_page_size_of_30(api_client, user, other_user):
    # given
    for n in range(31):
        group_with(user, other_user, title=f"g{n}")
    # when
    r = api_client.get("/api/chats")
    # then
    assert len(r.json()["results"]) == 30
    assert r.json()["next"] is not None


def test_chat_list_with_a_bad_cursor_answers_404(api_client, chat):
    # when
    r = api_client.get("/api/chats", {"cursor": "garbage"})
    # then
    assert r.status_code == 404, r.content


def test_chat_list_shows_each_callers_own_unread_count_and_role(client_for, user, other_user):
    # given
    chat = group_with(user, other_user, owner=user)
    message_in(chat, user)
    ChatUser.objects.filter(chat=chat, user=other_user).update(unread_count=1)
    # when
    mine = client_for(user).get("/api/chats").json()["results"][0]
    theirs = client_for(other_user).get("/api/chats").json()["results"][0]
    # then
    assert (mine["my_role"], mine["unread_count"]) == ("owner", 0)
    assert (theirs["my_role"], theirs["unread_count"]) == ("member", 1)


def test_chat_list_shows_which_members_are_online(api_client, user, other_user, set_online):
    # given
    group_with(user, other_user)
    set_online(other_user)
    # when
    r = api_client.get("/api/chats")
    # then
    online = {m["user"]["id"]: m["user"]["is_online"] for m in r.json()["results"][0]["members"]}
    assert online == {user.id: False, other_user.id: True}


def test_chat_list_is_empty_for_a_user_without_chats(client_for, db):
    # given
    loner = UserFactory.create()
    # when
    r = client_for(loner).get("/api/chats")
    # then
    assert r.status_code == 200, r.content
    assert r.json() == {"results": [], "next": None}


def test_a_chat_the_caller_left_disappears_from_the_list(api_client, user, other_user):
    # given
    chat = group_with(other_user, user, owner=other_user)
    ChatUserFactory.create(chat=chat, user=UserFactory.create())
    # when
    api_client.delete(f"/api/chats/{chat.id}/members/{user.id}")
    r = api_client.get("/api/chats")
    # then
    assert r.json()["results"] == []


def test_a_message_sent_through_the_service_becomes_the_chats_last_message(api_client, user, chat):
    # given
    message_in(chat, user, "older")
    sent = message_create(chat_id=chat.id, sender=user, content="newest").message
    # when
    r = api_client.get("/api/chats")
    # then
    assert r.json()["results"][0]["last_message"]["id"] == sent.id


def test_deleting_a_user_points_their_chats_at_the_newest_remaining_message(api_client, user, other_user):
    # given
    leaving = UserFactory.create()
    chat = group_with(user, other_user, leaving, owner=user)
    kept = message_in(chat, other_user, "stays")
    message_in(chat, leaving, "goes with its sender")
    # when
    leaving.delete()
    # then
    r = api_client.get("/api/chats")
    assert r.json()["results"][0]["last_message"]["id"] == kept.id


def test_deleting_the_only_author_leaves_the_chat_without_last_message(api_client, user, other_user):
    # given
    chat = group_with(user, other_user, owner=user)
    message_in(chat, other_user, "only one")
    # when
    other_user.delete()
    # then
    assert api_client.get("/api/chats").json()["results"][0]["last_message"] is None


def test_deleting_a_chat_takes_its_messages_and_its_last_message_link_with_it(api_client, user, other_user):
    # given: the chat points at its newest message, and the messages at the chat
    chat = group_with(user, other_user, owner=user)
    message_in(chat, other_user, "one")
    message_in(chat, user, "two")
    # when (as Django admin deletes it)
    chat.delete()
    # then
    assert not Message.objects.filter(chat_id=chat.id).exists()
    assert api_client.get("/api/chats").json()["results"] == []
