"""Who may open a socket: token (4401), membership (4403), origin (refused handshake), path (4404)."""

import asyncio
import logging

import pytest
from asgiref.sync import sync_to_async
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.ws_auth import origin_allowed
from tests.factories import UserFactory
from tests.realtime.conftest import access_token

pytestmark = pytest.mark.django_db(transaction=True)


async def test_socket_without_token_is_closed_4401(connect):
    # when
    socket = await connect(None, "/ws/")
    # then
    assert socket.accepted
    assert await socket.closed_with() == 4401


async def test_socket_with_a_malformed_token_is_closed_4401(connect):
    # when
    socket = await connect(None, "/ws/", token="not.a.jwt")
    # then
    assert await socket.closed_with() == 4401


async def test_socket_with_an_expired_token_is_closed_4401(connect, user):
    # when
    socket = await connect(None, "/ws/", token=access_token(user, expired=True))
    # then
    assert await socket.closed_with() == 4401


async def test_socket_with_a_refresh_token_instead_of_an_access_token_is_closed_4401(connect, user):
    # given
    refresh = str(await sync_to_async(RefreshToken.for_user)(user))
    # when
    socket = await connect(None, "/ws/", token=refresh)
    # then
    assert await socket.closed_with() == 4401


async def test_socket_of_a_deactivated_user_is_closed_4401(connect):
    # given
    inactive = await sync_to_async(UserFactory.create)(is_active=False)
    # when
    socket = await connect(inactive, "/ws/")
    # then
    assert await socket.closed_with() == 4401


async def test_outsider_of_a_chat_is_closed_4403(connect, chat):
    # given
    outsider = await sync_to_async(UserFactory.create)()
    # when
    socket = await connect(outsider, f"/ws/chat/{chat.id}/")
    # then
    assert socket.accepted
    assert await socket.closed_with() == 4403


async def test_socket_for_a_chat_that_does_not_exist_is_closed_4403(connect, user):
    # when
    socket = await connect(user, "/ws/chat/999999/")
    # then
    assert await socket.closed_with() == 4403


async def test_member_opens_the_chat_socket_and_the_all_chats_socket(connect, user, chat):
    # when
    one_chat = await connect(user, f"/ws/chat/{chat.id}/")
    all_chats = await connect(user, "/ws/")
    # then
    assert one_chat.accepted and await one_chat.is_open()
    assert all_chats.accepted and await all_chats.is_open()


async def test_socket_from_a_foreign_origin_is_refused(connect, user):
    # when
    socket = await connect(user, "/ws/", origin="https://evil.example")
    # then
    assert not socket.accepted


async def test_socket_from_an_allowed_host_origin_is_accepted(connect, user):
    # when
    socket = await connect(user, "/ws/", origin="http://localhost:8000")
    # then
    assert socket.accepted and await socket.is_open()


@pytest.mark.parametrize("origin", ["file://", "null"])
async def test_socket_from_the_desktop_clients_file_page_is_accepted(connect, user, origin):
    # when
    socket = await connect(user, "/ws/", origin=origin)
    # then
    assert socket.accepted and await socket.is_open()


def test_null_origin_is_refused_when_not_listed(settings):
    # given
    settings.WEBSOCKET_ALLOWED_ORIGINS = ["file://"]
    # then
    assert not origin_allowed("null")
    assert origin_allowed("file://")


def test_listed_origin_url_is_admitted_and_others_are_not(settings):
    # given
    settings.ALLOWED_HOSTS = ["chat.example.com"]
    settings.WEBSOCKET_ALLOWED_ORIGINS = ["app://messenger", "https://desktop.example.org"]
    # then
    assert origin_allowed("https://chat.example.com")
    assert origin_allowed("app://messenger")
    assert origin_allowed("https://desktop.example.org")
    assert not origin_allowed("https://desktop.example.org.evil.com")
    assert not origin_allowed("http://desktop.example.org")


def test_a_client_without_origin_header_is_admitted():
    # then: browsers always send Origin; its absence is a non-browser client
    assert origin_allowed(None)


async def test_concurrent_connects_each_get_their_own_answer(connect, user, other_user, chat):
    # given: connects that arrive together are looked up together (one batch)
    outsider = await sync_to_async(UserFactory.create)()
    inactive = await sync_to_async(UserFactory.create)(is_active=False)
    # when
    sockets = await asyncio.gather(
        connect(user, f"/ws/chat/{chat.id}/"),
        connect(outsider, f"/ws/chat/{chat.id}/"),
        connect(inactive, "/ws/"),
        connect(other_user, "/ws/"),
        connect(None, "/ws/", token="not.a.jwt"),
    )
    member, stranger, deactivated, other_member, anonymous = sockets
    # then
    assert await member.is_open() and await other_member.is_open()
    assert await stranger.closed_with() == 4403
    assert await deactivated.closed_with() == 4401
    assert await anonymous.closed_with() == 4401


async def test_tokens_never_reach_the_logs(connect, user, caplog):
    # given
    good = access_token(user)
    bad = good[:-4] + "AAAA"
    # when
    with caplog.at_level(logging.DEBUG):
        for token in (good, bad, access_token(user, expired=True)):
            socket = await connect(None, "/ws/", token=token)
            await socket.communicator.disconnect()
    # then
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert good not in logged and bad not in logged
    assert good.split(".")[1] not in logged  # not even the payload part


@pytest.mark.parametrize("path", ["/ws/nope/", "/ws/chat/abc/", "/other/"])
async def test_a_socket_on_an_unknown_path_is_closed_4404(connect, user, path):
    # when
    socket = await connect(user, path)
    # then
    assert socket.accepted
    assert await socket.closed_with() == 4404
