"""The transaction's outbox (chats.realtime.outbox) and the renderers (chats.realtime.render): events
leave after the commit only, with their transaction; each is rendered once, chat events in O(members)."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from chats import services
from chats.realtime import outbox, render
from chats.realtime.events import MessageDeleted
from tests.conftest import frames
from tests.factories import UserFactory, group_with, message_in

pytestmark = pytest.mark.django_db(transaction=True)


def deleted(n: int) -> MessageDeleted:
    return MessageDeleted(chat_id=1, message_id=n, version=n)


def test_events_leave_after_the_commit_in_the_order_recorded(announced):
    # when
    with outbox.atomic():
        outbox.record(deleted(1))
        outbox.record(deleted(2))
        assert announced == []  # nothing before the commit
    # then
    assert [frame["message_id"] for _, frame in frames(announced)] == [1, 2]


def test_the_events_of_a_savepoint_that_rolls_back_are_dropped_with_it(announced):
    # when
    with outbox.atomic():
        outbox.record(deleted(1))
        with pytest.raises(ValueError), outbox.atomic():
            outbox.record(deleted(2))
            raise ValueError
        with outbox.atomic():
            outbox.record(deleted(3))
    # then
    assert [frame["message_id"] for _, frame in frames(announced)] == [1, 3]


def test_nothing_leaves_when_an_enclosing_plain_transaction_rolls_back(announced):
    # when
    with pytest.raises(ValueError), transaction.atomic():
        with outbox.atomic():
            outbox.record(deleted(1))
        raise ValueError
    # then
    assert announced == []


def test_an_event_recorded_outside_a_transaction_is_a_programming_error():
    with pytest.raises(RuntimeError):
        outbox.record(deleted(1))


# Renders --------------------------------------------------------------------------------------


@pytest.fixture
def counted(monkeypatch):
    """Calls of the chat's shared rendering and of the message rendering, wherever they are made."""
    from chats import serializers

    calls = {"chat": 0, "message": 0}
    real_chat, real_message = serializers.chat_shared_data, serializers.message_data

    def chat_shared_data(*args, **kwargs):
        calls["chat"] += 1
        return real_chat(*args, **kwargs)

    def message_data(*args, **kwargs):
        calls["message"] += 1
        return real_message(*args, **kwargs)

    monkeypatch.setattr(render, "chat_shared_data", chat_shared_data)
    monkeypatch.setattr(render, "message_data", message_data)
    monkeypatch.setattr(serializers, "message_data", message_data)
    return calls


def big_group(owner, members: int):
    return group_with(owner, *UserFactory.create_batch(members), owner=owner, title="Big")


def test_a_new_group_is_rendered_once_for_all_its_members(user, counted, announced):
    # given
    others = UserFactory.create_batch(60)
    # when
    services.chat_create(creator=user, is_group=True, title="New", member_ids=[u.id for u in others])
    # then: one rendering of the shared part; each member's frame carries their own fields
    assert counted["chat"] == 1
    created = [(group, frame) for group, frame in frames(announced) if frame["type"] == "chat.created"]
    assert len(created) == 61
    roles = {group: frame["chat"]["my_role"] for group, frame in created}
    assert roles[f"user.{user.id}"] == "owner"
    assert {roles[f"user.{u.id}"] for u in others} == {"member"}
    assert all(len(frame["chat"]["members"]) == 61 for _, frame in created)


def test_a_rename_is_one_small_frame_to_the_chat_whatever_its_size(user, counted, announced):
    # given
    small, big = big_group(user, 2), big_group(user, 200)
    # when
    services.chat_update(chat_id=small.id, actor=user, title="Renamed")
    services.chat_update(chat_id=big.id, actor=user, title="Renamed")
    # then: besides each rename's system message (one message.created, also the same for any size)
    assert counted["chat"] == 0
    updates = [(group, envelope) for group, envelope in announced if envelope["event"] == "chat.updated"]
    (small_group, _), (big_group_name, big_frame) = frames(updates)
    assert (small_group, big_group_name) == (f"chat.{small.id}", f"chat.{big.id}")
    assert big_frame["chat"] == {"id": big.id, "is_group": True, "title": "Renamed"}
    assert len(updates[1][1]["text"]) - len(updates[0][1]["text"]) == len(str(big.id)) - len(str(small.id))
    assert [frame["type"] for _, frame in frames(announced)].count("message.created") == 2


def test_an_added_member_gets_the_chat_rendered_once_and_the_chat_hears_one_frame(user, counted, announced):
    # given
    chat = big_group(user, 200)
    newcomer = UserFactory.create()
    # when
    services.chat_member_add(chat_id=chat.id, actor=user, user_id=newcomer.id)
    # then
    assert counted["chat"] == 1
    assert [(group, frame["type"]) for group, frame in frames(announced)] == [
        (f"user.{newcomer.id}", "chat.created"),
        (f"chat.{chat.id}", "member.added"),
        (f"chat.{chat.id}", "message.created"),  # the system message "member.added"
    ]


def test_a_message_sent_over_rest_is_rendered_once_for_its_event_and_its_answer(api_client, chat, counted, announced):
    # when
    r = api_client.post(f"/api/chats/{chat.id}/messages", {"content": "once"}, format="json")
    # then
    assert r.status_code == 201, r.content
    assert counted["message"] == 1
    ((_, event),) = frames(announced)
    assert event["message"] == r.json()


def test_an_edit_is_rendered_once_for_its_event_and_its_answer(api_client, user, chat, counted, announced):
    # given
    message = message_in(chat, user, "draft")
    # when
    r = api_client.patch(f"/api/chats/{chat.id}/messages/{message.id}", {"content": "final"}, format="json")
    # then
    assert r.status_code == 200, r.content
    assert counted["message"] == 1
    ((_, event),) = frames(announced)
    assert event["message"] == r.json()


# Queries --------------------------------------------------------------------------------------


def queries(function) -> int:
    with CaptureQueriesContext(connection) as captured:
        function()
    return len(captured)


@pytest.mark.parametrize("operation", ["rename", "add", "remove", "role"])
def test_chat_events_cost_as_many_queries_for_200_members_as_for_2(user, operation, announced):
    # given
    small, big = big_group(user, 2), big_group(user, 200)
    spare = UserFactory.create_batch(2)
    members = {c.id: c.memberships.exclude(user=user).first().user_id for c in (small, big)}

    def run(chat, index):
        if operation == "rename":
            services.chat_update(chat_id=chat.id, actor=user, title=f"t{index}")
        elif operation == "add":
            services.chat_member_add(chat_id=chat.id, actor=user, user_id=spare[index].id)
        elif operation == "remove":
            services.chat_member_remove(chat_id=chat.id, actor=user, user_id=members[chat.id])
        else:
            services.chat_member_set_role(chat_id=chat.id, actor=user, user_id=members[chat.id], role="admin")

    # when
    few = queries(lambda: run(small, 0))
    many = queries(lambda: run(big, 1))
    # then
    assert many == few
    assert announced


def test_the_answer_to_adding_a_member_is_the_chat_as_get_shows_it_rendered_once(api_client, user, chat, counted):
    # given
    newcomer = UserFactory.create()
    # when
    added = api_client.post(f"/api/chats/{chat.id}/members", {"user_id": newcomer.id}, format="json")
    # then: the newcomer's chat.created and the answer share one rendering
    assert added.status_code == 201, added.content
    assert counted["chat"] == 1
    assert added.json() == api_client.get(f"/api/chats/{chat.id}").json()


def test_a_rendering_that_fails_after_the_commit_loses_nothing_and_the_answer_is_rendered_again(
    api_client, chat, announced, monkeypatch
):
    # given: the renderer fails (the rows have committed by then)
    def broken(entries):
        raise RuntimeError("renderer down")

    monkeypatch.setattr(render, "render_entries", broken)
    # when
    r = api_client.post(f"/api/chats/{chat.id}/messages", {"content": "kept"}, format="json")
    # then: stored and answered; nothing published (clients catch up with ?since=)
    assert r.status_code == 201, r.content
    assert r.json()["content"] == "kept"
    assert announced == []
    assert chat.messages.filter(content="kept").exists()
