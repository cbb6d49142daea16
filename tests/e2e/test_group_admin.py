"""Group info at 1440 and 390 px: the owner promotes and demotes, a member removed from the open chat
is told so, and an owner who leaves chooses who owns the group after them."""

from __future__ import annotations

import re
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.conftest import post_json
from tests.e2e.direct_chat import PASSWORD
from tests.e2e.test_messenger import expect, png_bytes
from tests.e2e.test_settings import VIEWPORTS, get_json, signed_in

pytestmark = pytest.mark.e2e


@dataclass
class Group:
    url: str
    suffix: str
    people: dict[str, Any]  # "alice" (owner), "bob" (admin), "carol" (member): each one's register answer
    chat: dict[str, Any]

    @property
    def title(self) -> str:
        return f"Team {self.suffix}"

    def username(self, name: str) -> str:
        return f"{name}_{self.suffix}"

    def token(self, name: str) -> str:
        return str(self.people[name]["access"])

    def user_id(self, name: str) -> int:
        return int(self.people[name]["user"]["id"])

    def roles(self) -> dict[str, str]:
        """Each remaining member's role, as Carol's GET /api/chats/{id} shows it, by first name."""
        chat = get_json(f"{self.url}/api/chats/{self.chat['id']}", self.token("carol"))
        names = {self.user_id(name): name for name in self.people}
        return {names[m["user"]["id"]]: m["role"] for m in chat["members"]}


@pytest.fixture(params=list(VIEWPORTS), ids=list(VIEWPORTS))
def viewport(request: pytest.FixtureRequest) -> dict[str, int]:
    return VIEWPORTS[request.param]


@pytest.fixture
def group(e2e_server: str) -> Group:
    """Alice owns "Team <suffix>"; Bob is its admin, Carol a member."""
    suffix = uuid.uuid4().hex[:6]
    people = {}
    for name in ("alice", "bob", "carol"):
        body = {"username": f"{name}_{suffix}", "email": f"{name}_{suffix}@example.com", "password": PASSWORD}
        status, answer = post_json(
            f"{e2e_server}/api/auth/register", {**body, "display_name": f"{name.title()} {suffix}"}
        )
        assert status == 201, answer
        people[name] = answer
    members = [people["bob"]["user"]["id"], people["carol"]["user"]["id"]]
    status, chat = post_json(
        f"{e2e_server}/api/chats",
        {"is_group": True, "title": f"Team {suffix}", "member_ids": members},
        people["alice"]["access"],
    )
    assert status == 201, chat
    found = Group(e2e_server, suffix, people, chat)
    patch(found, f"/api/chats/{chat['id']}/members/{found.user_id('bob')}", {"role": "admin"}, "alice")
    return found


def patch(group: Group, path: str, body: dict[str, Any], who: str) -> None:
    import json

    request = urllib.request.Request(f"{group.url}{path}", data=json.dumps(body).encode(), method="PATCH")
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Bearer {group.token(who)}")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def open_group_info(page: Any, group: Group) -> Any:
    page.locator(".chat-list .chat-item", has_text=group.title).click()
    page.locator(".chat__title", has_text=group.title).click()
    panel = page.locator(".panel")
    expect(panel.locator(".panel__title")).to_have_text("Group info")
    return panel


def member_row(panel: Any, group: Group, name: str) -> Any:
    return panel.locator(f'.member[data-user-id="{group.user_id(name)}"]')


def test_the_owner_promotes_a_member_and_demotes_them_again(
    browser: Any, group: Group, viewport: dict[str, int]
) -> None:
    # given Alice, the owner, with the group's info open
    with signed_in(browser, group.url, group.username("alice"), viewport) as page:
        panel = open_group_info(page, group)
        carol = member_row(panel, group, "carol")
        expect(carol.locator(".role")).to_have_text("Member")
        # when she makes Carol an admin
        carol.get_by_role("button", name=re.compile("^Make admin")).click()
        # then the panel and the server say so
        expect(carol.locator(".role")).to_have_text("Admin")
        assert group.roles()["carol"] == "admin"
        # when she takes it back
        carol.get_by_role("button", name=re.compile("^Remove admin")).click()
        expect(carol.locator(".role")).to_have_text("Member")
        assert group.roles()["carol"] == "member"


def test_an_admin_sees_no_promote_control(browser: Any, group: Group, viewport: dict[str, int]) -> None:
    # given Bob, an admin (only the owner changes roles)
    with signed_in(browser, group.url, group.username("bob"), viewport) as page:
        panel = open_group_info(page, group)
        # then Carol's row offers removal but no role change
        carol = member_row(panel, group, "carol")
        expect(carol.get_by_role("button", name=re.compile("^Remove Carol"))).to_be_visible()
        expect(carol.get_by_role("button", name=re.compile("admin"))).to_have_count(0)


def test_a_member_removed_from_the_open_chat_is_told_who_removed_them(
    browser: Any, group: Group, viewport: dict[str, int]
) -> None:
    # given Carol with the group open
    with signed_in(browser, group.url, group.username("carol"), viewport) as page:
        page.locator(".chat-list .chat-item", has_text=group.title).click()
        expect(page.locator(".chat__title", has_text=group.title)).to_be_visible()
        # when Alice removes her
        request = urllib.request.Request(
            f"{group.url}/api/chats/{group.chat['id']}/members/{group.user_id('carol')}", method="DELETE"
        )
        request.add_header("Authorization", f"Bearer {group.token('alice')}")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 204
        # then a notice says who removed her from which group, and the chat is gone from her list
        notice = page.get_by_role("dialog", name="Removed from the group")
        expect(notice).to_be_visible()
        expect(notice).to_contain_text(f"Alice {group.suffix}")
        expect(notice).to_contain_text("removed you from")
        expect(notice).to_contain_text(group.title)
        notice.get_by_role("button", name="OK").click()
        expect(page.locator(".chat-list .chat-item", has_text=group.title)).to_have_count(0)


def test_the_owner_leaving_chooses_who_owns_the_group_next(
    browser: Any, group: Group, viewport: dict[str, int]
) -> None:
    # given Alice, the owner, with the group's info open (Bob, the admin, is whom the server would pick)
    with signed_in(browser, group.url, group.username("alice"), viewport) as page:
        panel = open_group_info(page, group)
        # when she leaves, the dialog offers every other member, Bob first; she picks Carol
        panel.get_by_role("button", name="Leave group").click()
        dialog = page.get_by_role("dialog", name="Leave the group")
        choices = dialog.get_by_role("radio")
        expect(choices).to_have_count(2)
        expect(dialog.get_by_role("radio", name=re.compile(f"Bob {group.suffix}"))).to_be_checked()
        dialog.get_by_role("radio", name=re.compile(f"Carol {group.suffix}")).check()
        dialog.get_by_role("button", name="Hand over and leave").click()
        # then the group leaves her list without a removal notice, and Carol owns it, Bob still its admin
        expect(page.locator(".chat-list .chat-item", has_text=group.title)).to_have_count(0)
        expect(page.get_by_role("dialog")).to_have_count(0)
        assert group.roles() == {"bob": "admin", "carol": "owner"}


def test_the_owner_who_cancels_the_handover_stays(browser: Any, group: Group, viewport: dict[str, int]) -> None:
    with signed_in(browser, group.url, group.username("alice"), viewport) as page:
        panel = open_group_info(page, group)
        panel.get_by_role("button", name="Leave group").click()
        page.get_by_role("dialog", name="Leave the group").get_by_role("button", name="Cancel").click()
        expect(page.get_by_role("dialog")).to_have_count(0)
        assert group.roles() == {"alice": "owner", "bob": "admin", "carol": "member"}


def put_avatar(group: Group, who: str, picture: bytes) -> None:
    """PUT /api/auth/me/avatar as multipart `file`, as the settings page sends it."""
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="me.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + picture
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(f"{group.url}/api/auth/me/avatar", data=body, method="PUT")
    request.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
    request.add_header("Authorization", f"Bearer {group.token(who)}")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_faces_show_beside_group_messages_and_in_the_member_list(
    browser: Any, group: Group, screenshot_dir: Any, scheme: str
) -> None:
    """Also the README's screenshots: tests/e2e/screenshots/42-group-light.png and 43-group-dark.png are
    client/docs/screenshot-light.png and screenshot-dark.png."""
    # given Bob and Carol with pictures, each with a message in the group
    put_avatar(group, "bob", png_bytes((123, 200, 98), (256, 256)))
    put_avatar(group, "carol", png_bytes((166, 149, 231), (256, 256)))
    for who, text in [
        ("bob", "Pictures are in: you can change yours under Settings."),
        ("carol", "And the owner can make anyone an admin from Group info."),
        ("carol", "Dark mode follows the system unless you pick one."),
    ]:
        post_json(f"{group.url}/api/chats/{group.chat['id']}/messages", {"content": text}, group.token(who))
    with signed_in(browser, group.url, group.username("alice"), VIEWPORTS["wide"], scheme) as page:
        # when Alice opens the group and its info
        panel = open_group_info(page, group)
        # then each sender's run of messages starts with their picture, and the member list shows them
        faces = page.locator(".msg .avatar__picture")
        expect(faces).to_have_count(2)
        for name in ("bob", "carol"):
            expect(member_row(panel, group, name).locator(".avatar__picture")).to_be_visible()
        expect(member_row(panel, group, "alice").locator(".avatar__picture")).to_have_count(0)  # initials
        page.mouse.move(0, 0)
        page.screenshot(path=str(screenshot_dir / f"{42 if scheme == 'light' else 43}-group-{scheme}.png"))
