from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from chats.models import Chat, ChatUser
from tests.factories import ChatFactory, ChatUserFactory, UserFactory


@dataclass
class Team:
    """A group with one member of each role, a second admin, and someone outside it."""

    chat: Chat
    owner: User
    admin: User
    admin2: User
    member: User
    member2: User
    outsider: User

    def user(self, role: str) -> User:
        return getattr(self, role)


@pytest.fixture
def team(db) -> Team:
    chat = ChatFactory.create(title="Team")
    people = {name: UserFactory.create(username=name) for name in ("owner", "admin", "admin2", "member", "member2")}
    roles = {
        "owner": ChatUser.Role.OWNER,
        "admin": ChatUser.Role.ADMIN,
        "admin2": ChatUser.Role.ADMIN,
        "member": ChatUser.Role.MEMBER,
        "member2": ChatUser.Role.MEMBER,
    }
    for name, user in people.items():
        ChatUserFactory.create(chat=chat, user=user, role=roles[name])
    return Team(chat=chat, outsider=UserFactory.create(username="outsider"), **people)


@pytest.fixture
def client_for():
    """An API client authenticated as the given user, with an access token only: building it writes
    nothing (no outstanding refresh token), so it may be made inside `with unchanged():`."""

    def make(user: User) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
        return client

    return make
