"""Reads cost a constant number of queries, whatever the count of chats, members or messages;
the send path stays within a small budget."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import ChatUserFactory, UserFactory, group_with, message_in

# Authentication (the user) + the page of chats + their memberships with users + their last messages.
CHAT_LIST_BUDGET = 4
# Authentication + membership check + one page of messages with senders and attachments.
# ... and which senders share a chat with the caller (presence is hidden from the others: a sender who left).
HISTORY_BUDGET = 5  # the caller, their membership, the page's ids, the rows with senders and attachments, contacts
# Authentication; the chat's row lock with the membership and the client_id's first message read under
# it; the insert; the version bump; the unread counters; the message rendered for its event and the
# answer (here, where the test's transaction never commits, by the answer's fallback; after a real
# commit by the outbox, from the row the service wrote: no query). Inside the test's transaction the
# atomic block adds a SAVEPOINT and its RELEASE (BEGIN/COMMIT in production). Nothing for the search
# index: it is written after the commit (chats.search.Indexer).
SEND_BUDGET = 8


def chats_with_traffic(user, count):
    """`count` groups of the user, each with three more members and four messages."""
    for n in range(count):
        others = [UserFactory.create() for _ in range(3)]
        chat = group_with(user, *others, owner=user, title=f"g{n}")
        for m in range(4):
            message_in(chat, (user, *others)[m % 4], f"m{m}")


def queries_for(client, path, params=None):
    with CaptureQueriesContext(connection) as captured:
        r = client.get(path, params or {})
    assert r.status_code == 200, r.content
    return len(captured), r


def test_chat_list_of_50_chats_costs_as_many_queries_as_of_5(api_client, user, django_assert_max_num_queries):
    # given
    chats_with_traffic(user, 5)
    few, _ = queries_for(api_client, "/api/chats", {"limit": 100})
    chats_with_traffic(user, 45)
    # when
    with django_assert_max_num_queries(CHAT_LIST_BUDGET):
        r = api_client.get("/api/chats", {"limit": 100})
    many, _ = queries_for(api_client, "/api/chats", {"limit": 100})
    # then
    assert r.status_code == 200, r.content
    assert len(r.json()["results"]) == 50
    assert all(len(c["members"]) == 4 and c["last_message"] for c in r.json()["results"])
    assert many == few


def test_chat_list_costs_the_same_with_more_members_per_chat(api_client, user, chat):
    # given
    message_in(chat, user)
    few, _ = queries_for(api_client, "/api/chats")
    for _ in range(30):
        ChatUserFactory.create(chat=chat, user=UserFactory.create())
    # when
    many, r = queries_for(api_client, "/api/chats")
    # then
    assert len(r.json()["results"][0]["members"]) == 32
    assert many == few


def test_chat_detail_costs_a_constant_number_of_queries(api_client, user, chat, django_assert_max_num_queries):
    # given
    for _ in range(20):
        ChatUserFactory.create(chat=chat, user=UserFactory.create())
        message_in(chat, user)
    # when / then
    with django_assert_max_num_queries(CHAT_LIST_BUDGET):
        r = api_client.get(f"/api/chats/{chat.id}")
    assert r.status_code == 200, r.content


@pytest.mark.parametrize("query", [{}, {"limit": 100}, {"since": 0, "limit": 100}], ids=["default", "full", "catch-up"])
def test_history_page_costs_the_same_whatever_the_message_count(
    api_client, user, other_user, chat, django_assert_max_num_queries, query
):
    # given
    for n in range(5):
        message_in(chat, (user, other_user)[n % 2])
    few, _ = queries_for(api_client, f"/api/chats/{chat.id}/messages", query)
    senders = [UserFactory.create() for _ in range(10)]
    for sender in senders:
        ChatUserFactory.create(chat=chat, user=sender)
    for n in range(200):
        message_in(chat, senders[n % 10])
    # when
    with django_assert_max_num_queries(HISTORY_BUDGET):
        r = api_client.get(f"/api/chats/{chat.id}/messages", query)
    many, _ = queries_for(api_client, f"/api/chats/{chat.id}/messages", query)
    # then
    assert r.status_code == 200, r.content
    assert many == few


def test_an_older_history_page_costs_the_same(api_client, user, chat):
    # given
    messages = [message_in(chat, user) for _ in range(150)]
    # when
    newest, _ = queries_for(api_client, f"/api/chats/{chat.id}/messages", {"limit": 50})
    oldest, r = queries_for(api_client, f"/api/chats/{chat.id}/messages", {"limit": 50, "before": messages[50].id})
    # then
    assert len(r.json()["results"]) == 50
    assert oldest == newest


def test_sending_a_message_stays_within_its_budget(api_client, chat, user, other_user, django_assert_max_num_queries):
    # given
    for _ in range(20):
        ChatUserFactory.create(chat=chat, user=UserFactory.create())
    message_in(chat, other_user)
    # when
    with django_assert_max_num_queries(SEND_BUDGET):
        r = api_client.post(f"/api/chats/{chat.id}/messages", {"content": "hi", "client_id": "b-1"}, format="json")
    # then
    assert r.status_code == 201, r.content


def test_a_repeated_send_costs_fewer_queries_than_the_first(api_client, chat):
    # given
    with CaptureQueriesContext(connection) as first:
        api_client.post(f"/api/chats/{chat.id}/messages", {"content": "hi", "client_id": "b-1"}, format="json")
    # when
    with CaptureQueriesContext(connection) as again:
        r = api_client.post(f"/api/chats/{chat.id}/messages", {"content": "hi", "client_id": "b-1"}, format="json")
    # then
    assert r.status_code == 200, r.content
    assert len(again) < len(first)


@pytest.mark.django_db(transaction=True)
def test_a_committed_send_renders_its_message_from_the_row_it_wrote(api_client, chat, other_user, announced):
    # given: a real commit (the outbox renders and publishes after it)
    message_in(chat, other_user)
    # when
    with CaptureQueriesContext(connection) as captured:
        r = api_client.post(f"/api/chats/{chat.id}/messages", {"content": "hello", "client_id": "b-2"}, format="json")
    # then: the budget without the re-read -- the message is not read again for its event or its answer
    assert r.status_code == 201, r.content
    statements = [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(("BEGIN", "COMMIT"))]
    assert len(statements) == SEND_BUDGET - 3, statements  # no SAVEPOINT/RELEASE at the top, no re-read
    assert len(announced) == 1


# The v1.1 message fields: replies, forwards, reactions, pins cost no query per message.


def decorate(chat, user, other_user, count):
    """`count` pinned messages, each forwarded and answered by a reply with two reactions (the chat's
    last message is such a reply)."""
    from chats import services

    originals = [message_in(chat, other_user, f"original {n}") for n in range(count)]
    chat.refresh_from_db()
    for original in originals:
        services.message_pin(chat_id=chat.id, actor=user, message_id=original.id)
        services.message_create(chat_id=chat.id, sender=user, forward_of_id=original.id)
        reply = services.message_create(chat_id=chat.id, sender=user, content="re", reply_to_id=original.id).message
        for emoji in ("👍", "🎉"):
            services.message_react(chat_id=chat.id, message_id=reply.id, actor=other_user, emoji=emoji, add=True)
    chat.refresh_from_db()
    return originals


@pytest.mark.parametrize("query", [{"limit": 100}, {"since": 0, "limit": 100}], ids=["history", "catch-up"])
def test_history_with_replies_costs_the_same_as_without(
    api_client, user, other_user, chat, django_assert_max_num_queries, query
):
    # given
    decorate(chat, user, other_user, 2)
    few, _ = queries_for(api_client, f"/api/chats/{chat.id}/messages", query)
    decorate(chat, user, other_user, 20)
    # when
    with django_assert_max_num_queries(HISTORY_BUDGET):
        r = api_client.get(f"/api/chats/{chat.id}/messages", query)
    many, _ = queries_for(api_client, f"/api/chats/{chat.id}/messages", query)
    # then
    assert r.status_code == 200, r.content
    assert sum(1 for m in r.json()["results"] if m["reply_to"]) == 22
    assert sum(1 for m in r.json()["results"] if m["forwarded_from"]) == 22
    assert sum(1 for m in r.json()["results"] if m["reactions"]) == 22
    assert sum(1 for m in r.json()["results"] if m["pinned"]) == 22
    assert many == few


def test_the_pins_page_costs_the_same_whatever_the_pin_count(
    api_client, user, other_user, chat, django_assert_max_num_queries
):
    # given
    decorate(chat, user, other_user, 2)
    few, _ = queries_for(api_client, f"/api/chats/{chat.id}/pins", {"limit": 100})
    decorate(chat, user, other_user, 20)
    # when
    with django_assert_max_num_queries(HISTORY_BUDGET):
        r = api_client.get(f"/api/chats/{chat.id}/pins", {"limit": 100})
    many, _ = queries_for(api_client, f"/api/chats/{chat.id}/pins", {"limit": 100})
    # then
    assert len(r.json()["results"]) == 22
    assert many == few


def test_a_page_with_more_reactors_than_named_costs_one_query_more_at_most(
    api_client, user, other_user, chat, django_assert_max_num_queries
):
    # given: 3 messages, each with an emoji of 51 reactors (the caller among them, past the 50 named)
    from chats import services

    crowd = UserFactory.create_batch(51)
    for member in crowd:
        ChatUserFactory.create(chat=chat, user=member)
    for n in range(3):
        chat.refresh_from_db()
        message = message_in(chat, other_user, f"m{n}")
        for member in [*crowd[:50], user]:
            services.message_react(chat_id=chat.id, message_id=message.id, actor=member, emoji="🔥", add=True)
    # when
    with django_assert_max_num_queries(HISTORY_BUDGET + 1):
        r = api_client.get(f"/api/chats/{chat.id}/messages")
    # then: the caller is named first though the 50 first reactors are others
    assert [m["reactions"][0]["user_ids"][0] for m in r.json()["results"]] == [user.id] * 3


def test_chat_list_with_decorated_last_messages_costs_the_same(
    api_client, user, other_user, django_assert_max_num_queries
):
    # given
    def chats(count):
        for _ in range(count):
            decorate(group_with(user, other_user, owner=user), user, other_user, 1)

    chats(2)
    few, _ = queries_for(api_client, "/api/chats", {"limit": 100})
    chats(20)
    # when
    with django_assert_max_num_queries(CHAT_LIST_BUDGET):
        r = api_client.get("/api/chats", {"limit": 100})
    many, _ = queries_for(api_client, "/api/chats", {"limit": 100})
    # then
    assert all(c["last_message"]["reply_to"] and c["last_message"]["reactions"] for c in r.json()["results"])
    assert many == few
