"""Every chat and message endpoint, for each of {outsider, member, admin, owner}.

Outsiders always get 404 and write nothing (the chat's existence is never revealed); a member without
the role gets 403 and writes nothing; admins and owners may do what the contract gives them
(an admin removes plain members only; the owner removes anyone).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.factories import UserFactory, direct_between, message_in

ROLES = ["outsider", "member", "admin", "owner"]
MISSING_CHAT_ID = 999_999


@dataclass
class Target:
    """What a request acts on, prepared before it is sent (so that only the request is measured)."""

    chat_id: int
    actor_id: int
    owner_id: int
    admin2_id: int
    member2_id: int
    own_message_id: int  # the actor's own message (an outsider has none: someone else's)
    others_message_id: int  # a message of member2
    newcomer_id: int  # a user in no chat


@dataclass
class Endpoint:
    name: str
    request: Callable[[Target], tuple[str, str, dict[str, Any]]]  # -> (method, path, body)
    allowed: dict[str, int]  # status for member/admin/owner; an outsider always gets 404

    def send(self, client, target: Target):
        method, path, body = self.request(target)
        if method == "get":
            return client.get(path, body)
        return getattr(client, method)(path, body, format="json")


def chat_path(t: Target, rest: str = "") -> str:
    return f"/api/chats/{t.chat_id}{rest}"


ENDPOINTS = [
    Endpoint("get chat", lambda t: ("get", chat_path(t), {}), {"member": 200, "admin": 200, "owner": 200}),
    Endpoint(
        "rename chat",
        lambda t: ("patch", chat_path(t), {"title": "Renamed"}),
        {"member": 403, "admin": 200, "owner": 200},
    ),
    Endpoint(
        "add member",
        lambda t: ("post", chat_path(t, "/members"), {"user_id": t.newcomer_id}),
        {"member": 403, "admin": 201, "owner": 201},
    ),
    Endpoint(
        "remove a member",
        lambda t: ("delete", chat_path(t, f"/members/{t.member2_id}"), {}),
        {"member": 403, "admin": 204, "owner": 204},
    ),
    Endpoint(
        "remove an admin",
        lambda t: ("delete", chat_path(t, f"/members/{t.admin2_id}"), {}),
        {"member": 403, "admin": 403, "owner": 204},
    ),
    Endpoint(
        "remove the owner",
        lambda t: ("delete", chat_path(t, f"/members/{t.owner_id}"), {}),
        {"member": 403, "admin": 403, "owner": 204},  # the owner removing themself is leaving
    ),
    Endpoint(
        "leave",
        lambda t: ("delete", chat_path(t, f"/members/{t.actor_id}"), {}),
        {"member": 204, "admin": 204, "owner": 204},
    ),
    Endpoint(
        "change a role",
        lambda t: ("patch", chat_path(t, f"/members/{t.member2_id}"), {"role": "admin"}),
        {"member": 403, "admin": 403, "owner": 200},
    ),
    Endpoint(
        "history",
        lambda t: ("get", chat_path(t, "/messages"), {}),
        {"member": 200, "admin": 200, "owner": 200},
    ),
    Endpoint(
        "catch-up",
        lambda t: ("get", chat_path(t, "/messages"), {"since": 0}),
        {"member": 200, "admin": 200, "owner": 200},
    ),
    Endpoint(
        "send",
        lambda t: ("post", chat_path(t, "/messages"), {"content": "hi", "client_id": "k-1"}),
        {"member": 201, "admin": 201, "owner": 201},
    ),
    Endpoint(
        "edit own message",
        lambda t: ("patch", chat_path(t, f"/messages/{t.own_message_id}"), {"content": "edited"}),
        {"member": 200, "admin": 200, "owner": 200},
    ),
    Endpoint(
        "edit another's message",
        lambda t: ("patch", chat_path(t, f"/messages/{t.others_message_id}"), {"content": "edited"}),
        {"member": 403, "admin": 403, "owner": 403},
    ),
    Endpoint(
        "delete own message",
        lambda t: ("delete", chat_path(t, f"/messages/{t.own_message_id}"), {}),
        {"member": 204, "admin": 204, "owner": 204},
    ),
    Endpoint(
        "delete another's message",
        lambda t: ("delete", chat_path(t, f"/messages/{t.others_message_id}"), {}),
        {"member": 403, "admin": 204, "owner": 204},
    ),
    Endpoint(
        "mark read",
        lambda t: ("post", chat_path(t, "/read"), {"message_id": t.others_message_id}),
        {"member": 200, "admin": 200, "owner": 200},
    ),
]
ENDPOINT_IDS = [e.name for e in ENDPOINTS]


def prepare(team, actor) -> Target:
    own_sender = team.member2 if actor == team.outsider else actor
    return Target(
        chat_id=team.chat.id,
        actor_id=actor.id,
        owner_id=team.owner.id,
        admin2_id=team.admin2.id,
        member2_id=team.member2.id,
        own_message_id=message_in(team.chat, own_sender, "own").id,
        others_message_id=message_in(team.chat, team.member2, "member2's").id,
        newcomer_id=UserFactory.create().id,
    )


def cases():
    for endpoint in ENDPOINTS:
        for role in ROLES:
            expected = 404 if role == "outsider" else endpoint.allowed[role]
            yield pytest.param(endpoint, role, expected, id=f"{endpoint.name}-{role}-{expected}")


@pytest.mark.parametrize("endpoint, role, expected", list(cases()))
def test_authorization_matrix(client_for, team, unchanged, endpoint, role, expected):
    # given
    actor = team.user(role)
    target = prepare(team, actor)
    client = client_for(actor)
    # when
    if expected >= 400:
        with unchanged():
            r = endpoint.send(client, target)
    else:
        r = endpoint.send(client, target)
    # then
    assert r.status_code == expected, r.content


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_an_outsider_gets_the_same_404_as_for_a_chat_that_does_not_exist(client_for, team, endpoint):
    # given
    target = prepare(team, team.outsider)
    absent = Target(**{**target.__dict__, "chat_id": MISSING_CHAT_ID})
    client = client_for(team.outsider)
    # when
    existing = endpoint.send(client, target)
    missing = endpoint.send(client, absent)
    # then
    assert existing.status_code == 404, existing.content
    assert missing.status_code == 404, missing.content
    assert existing.json() == missing.json()


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_outsiders_of_a_direct_chat_get_404_and_write_nothing(client_for, db, unchanged, endpoint):
    # given
    a, b, outsider = UserFactory.create(), UserFactory.create(), UserFactory.create()
    direct = direct_between(a, b)
    target = Target(
        chat_id=direct.id,
        actor_id=outsider.id,
        owner_id=a.id,
        admin2_id=b.id,
        member2_id=b.id,
        own_message_id=message_in(direct, a, "a's").id,
        others_message_id=message_in(direct, b, "b's").id,
        newcomer_id=UserFactory.create().id,
    )
    client = client_for(outsider)
    # when
    with unchanged():
        r = endpoint.send(client, target)
    # then
    assert r.status_code == 404, r.content


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_a_member_who_left_is_an_outsider_again(client_for, team, endpoint):
    # given
    target = prepare(team, team.member)
    client = client_for(team.member)
    client.delete(f"/api/chats/{team.chat.id}/members/{team.member.id}")
    # when
    r = endpoint.send(client, target)
    # then
    assert r.status_code == 404, r.content
