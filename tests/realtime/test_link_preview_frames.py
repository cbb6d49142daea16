"""A link preview of a message sent over a socket: the send's batch (a savepoint per send, one
commit) queues the fetch after its commit, and the chat's sockets get `message.updated` with the
preview. The page is a site of the test's own on 127.0.0.1 (tests/preview_site.py)."""

import pytest

from chats.previews import jobs
from tests.preview_site import running_site

pytestmark = pytest.mark.django_db(transaction=True)

PREVIEW_SECONDS = 15
PAGE = '<html><head><meta property="og:title" content="Socket page"><meta name="description" content="Sent live">'


async def test_a_message_sent_over_a_socket_gets_its_preview_as_message_updated(
    connect, settings, user, other_user, chat
):
    with running_site() as site:
        # given
        settings.LINK_PREVIEWS = True
        settings.LINK_PREVIEW_ALLOWED_HOSTS = [f"127.0.0.1:{site.port}"]
        url = site.page("/live", PAGE)
        sender = await connect(user, f"/ws/chat/{chat.id}/")
        reader = await connect(other_user, "/ws/")
        # when
        await sender.send({"type": "message.send", "content": f"look {url}", "client_id": "c-1"})
        ack = await sender.receive_type("message.ack")
        # then
        for socket in (sender, reader):
            # (fetched by a worker thread after the commit: allowed its 5 s cap and a busy machine)
            updated = await socket.receive_type("message.updated", timeout=PREVIEW_SECONDS)
            assert updated["message"]["id"] == ack["message"]["id"]
            assert updated["version"] == ack["message"]["version"] + 1
            assert updated["message"]["link_preview"] == {
                "url": url,
                "title": "Socket page",
                "description": "Sent live",
                "image_url": None,
                "site_name": None,
            }
        assert ack["message"]["link_preview"] is None
        assert site.hits["/live"] == 1
        assert jobs.wait_idle(timeout=10)
