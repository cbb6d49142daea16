"""A socket lives no longer than its token (close 4401 unless renewed with `auth`), nor than its
session: a password change, logging out everywhere or a deactivation closes it with 4401."""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.hashers import make_password
from rest_framework_simplejwt.tokens import AccessToken

from accounts import services
from accounts.models import User
from accounts.serializers import tokens_for
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def short_token(user: User, seconds: float) -> str:
    """An access token of the user's current session, expiring in `seconds` (a JWT's exp is whole
    seconds: a token of 1 s may be expired at once, so the tests give 2-3 s for a connect or a renewal
    on a loaded machine)."""
    token = AccessToken(tokens_for(user)["access"])  # type: ignore[arg-type]
    token.set_exp(lifetime=timedelta(seconds=seconds))
    return str(token)


async def test_the_socket_is_closed_4401_when_its_token_expires(connect, user, chat):
    # given
    sockets = [
        await connect(user, "/ws/", token=await sync_to_async(short_token)(user, 3)),
        await connect(user, f"/ws/chat/{chat.id}/", token=await sync_to_async(short_token)(user, 3)),
    ]
    assert all([await socket.is_open() for socket in sockets])
    # when the token expires, then
    for socket in sockets:
        assert await socket.closed_with() == 4401


async def test_auth_renews_the_socket_past_its_first_token_s_expiry(connect, user):
    # given
    socket = await connect(user, "/ws/", token=await sync_to_async(short_token)(user, 3))
    fresh = await sync_to_async(short_token)(user, 60)
    # when
    await socket.send({"type": "auth", "token": fresh})
    answer = await socket.receive_type("auth.ok")
    await asyncio.sleep(3.5)
    # then
    assert answer["expires_at"].endswith("Z")
    assert await socket.is_open()


async def test_a_renewal_moves_the_expiry_to_the_new_token_s(connect, user):
    # given
    socket = await connect(user, "/ws/", token=await sync_to_async(short_token)(user, 60))
    # when
    await socket.send({"type": "auth", "token": await sync_to_async(short_token)(user, 2)})
    await socket.receive_type("auth.ok")
    # then
    assert await socket.closed_with() == 4401


async def test_auth_with_a_token_of_another_user_closes_4401(connect, user, other_user):
    # given
    socket = await connect(user, "/ws/")
    # when
    await socket.send({"type": "auth", "token": await sync_to_async(short_token)(other_user, 60)})
    # then
    assert await socket.closed_with() == 4401


@pytest.mark.parametrize("token", ["not.a.jwt", "", 42, None])
async def test_auth_with_an_invalid_token_closes_4401(connect, user, token):
    # given
    socket = await connect(user, "/ws/")
    # when
    await socket.send({"type": "auth", "token": token})
    # then
    assert await socket.closed_with() == 4401


async def test_auth_with_an_expired_token_closes_4401(connect, user):
    # given
    socket = await connect(user, "/ws/")
    # when
    await socket.send({"type": "auth", "token": await sync_to_async(short_token)(user, -60)})
    # then
    assert await socket.closed_with() == 4401


async def test_auth_with_a_token_of_an_ended_session_closes_4401(connect, user):
    # given
    old = await sync_to_async(short_token)(user, 60)
    socket = await connect(user, "/ws/", token=old)
    await sync_to_async(User.objects.filter(pk=user.pk).update)(session_generation=5)  # nobody told
    # when
    await socket.send({"type": "auth", "token": old})
    # then
    assert await socket.closed_with() == 4401


async def test_a_password_change_closes_every_socket_of_the_user_4401(connect, user, other_user, chat):
    # given
    mine = [await connect(user, "/ws/"), await connect(user, f"/ws/chat/{chat.id}/")]
    theirs = await connect(other_user, "/ws/")
    # when
    await sync_to_async(services.user_password_change)(
        user=user, old_password=DEFAULT_PASSWORD, new_password="Another-Horse-43"
    )
    # then
    for socket in mine:
        assert await socket.closed_with() == 4401
    assert await theirs.is_open()


async def test_logging_out_everywhere_closes_the_sockets_4401(connect, user):
    # given
    socket = await connect(user, "/ws/")
    # when
    await sync_to_async(services.user_logout_all)(user=user)
    # then
    assert await socket.closed_with() == 4401


async def test_a_deactivation_anywhere_closes_the_sockets_4401(connect, user):
    # given
    socket = await connect(user, "/ws/")
    # when: as the admin's change form saves it
    account = await sync_to_async(User.objects.get)(pk=user.pk)
    account.is_active = False
    await sync_to_async(account.save)()
    # then
    assert await socket.closed_with() == 4401


async def test_an_admin_password_reset_closes_the_sockets_4401(connect, user):
    # given
    socket = await connect(user, "/ws/")
    account = await sync_to_async(User.objects.get)(pk=user.pk)
    # when: the admin's password form (set_password, then save)
    account.set_password("Reset-By-Admin-44")
    await sync_to_async(account.save)()
    # then
    assert await socket.closed_with() == 4401


async def test_a_password_rehashed_on_login_ends_nothing(connect, user, settings):
    # given: a hash of a hasher no longer preferred: check_password upgrades it and saves
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    account = await sync_to_async(User.objects.get)(pk=user.pk)
    account.password = await sync_to_async(make_password)(DEFAULT_PASSWORD, None, "md5")
    await sync_to_async(account.save)(update_fields=["password"])
    socket = await connect(account, "/ws/")
    # when
    assert await sync_to_async(account.check_password)(DEFAULT_PASSWORD)
    # then
    assert (await sync_to_async(User.objects.get)(pk=user.pk)).password.startswith("pbkdf2_")
    assert await socket.is_open()


async def test_a_send_after_the_sessions_ended_is_not_stored(connect, user, chat):
    # given: this process heard of the end, the socket's close is still to come
    from chats.models import Message
    from chats.realtime.hub import get_hub

    socket = await connect(user, "/ws/")
    get_hub().sessions.generations[user.pk] = 1
    # when
    await socket.send({"type": "message.send", "chat_id": chat.id, "content": "late", "client_id": "c-1"})
    # then
    assert await socket.closed_with() == 4401
    assert not await sync_to_async(Message.objects.filter(content="late").exists)()


async def test_a_socket_of_another_user_stays_open_when_one_user_s_sessions_end(connect):
    # given
    alice, bob = await sync_to_async(UserFactory.create_batch)(2)
    alice_socket, bob_socket = await connect(alice, "/ws/"), await connect(bob, "/ws/")
    # when
    await sync_to_async(services.user_logout_all)(user=alice)
    # then
    assert await alice_socket.closed_with() == 4401
    assert await bob_socket.is_open()


async def test_a_socket_attaching_after_its_process_heard_of_the_end_is_closed_4401(connect, user):
    # given: its connect lookup raced the end (the database still said generation 0)
    from chats.realtime.hub import get_hub

    get_hub().sessions.generations[user.pk] = 1
    # when
    socket = await connect(user, "/ws/")
    # then
    assert await socket.closed_with() == 4401


async def test_the_process_remembers_a_bounded_number_of_ended_sessions(monkeypatch):
    # given
    from chats.realtime import sessions

    monkeypatch.setattr(sessions, "REMEMBERED_USERS", 2)
    remembered = sessions.Sessions(asyncio.get_running_loop())
    # when
    for user_id in (1, 2, 3):
        await remembered.on_ended("user.x", {"user_id": user_id, "generation": 1}, set())
    # then
    assert list(remembered.generations) == [2, 3]
    assert remembered.ended(3, 0) and not remembered.ended(3, 1) and not remembered.ended(1, 0)


async def test_a_socket_renewed_with_the_new_session_s_token_stays_open(connect, user):
    # given: the password was changed on this device, whose socket renews with the answer's token
    socket = await connect(user, "/ws/")
    account = await sync_to_async(User.objects.get)(pk=user.pk)
    await sync_to_async(User.objects.filter(pk=user.pk).update)(session_generation=1)  # nobody told yet
    account.session_generation = 1
    # when
    await socket.send({"type": "auth", "token": await sync_to_async(short_token)(account, 60)})
    await socket.receive_type("auth.ok")
    from chats.realtime.hub import get_hub

    await get_hub().sessions.on_ended("user.x", {"user_id": user.pk, "generation": 1}, set())
    # then: a send gets past the session check (to the membership check: no chat 1), the socket stays
    await socket.send({"type": "message.send", "chat_id": 1, "content": "x", "client_id": "c-1"})
    assert (await socket.receive_type("error"))["code"] == "not_found"
    assert await socket.is_open()
