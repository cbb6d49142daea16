"""Messages carrying an attachment: `attachment` and `attachment_url` on every one that has one."""

from media.models import Attachment
from tests.media import images
from tests.media.conftest import upload


def test_a_message_may_be_an_image_with_empty_text(api_client, chat):
    # given
    attachment = upload(api_client, images.png()).json()
    # when
    r = api_client.post(
        f"/api/chats/{chat.id}/messages", {"content": "", "attachment_id": attachment["id"]}, format="json"
    )
    # then
    assert r.status_code == 201, r.content
    message = r.json()
    assert message["content"] == ""
    assert message["attachment"] == attachment
    assert message["attachment_url"] == attachment["url"] == f"/api/attachments/{attachment['id']}/file"


def test_history_carries_attachment_url(api_client, make_client, other_user, chat):
    # given
    attachment = upload(api_client, images.jpeg()).json()
    api_client.post(f"/api/chats/{chat.id}/messages", {"attachment_id": attachment["id"]}, format="json")
    api_client.post(f"/api/chats/{chat.id}/messages", {"content": "just text"}, format="json")
    # when
    r = make_client(other_user).get(f"/api/chats/{chat.id}/messages")
    # then
    assert r.status_code == 200, r.content
    by_content = {m["content"]: m for m in r.json()["results"]}
    assert by_content[""]["attachment_url"] == attachment["url"]
    assert by_content[""]["attachment"]["sha256"] == attachment["sha256"]
    assert by_content["just text"]["attachment"] is None
    assert by_content["just text"]["attachment_url"] is None


def test_a_deleted_message_drops_its_attachment(api_client, chat):
    # given
    attachment = upload(api_client, images.png()).json()
    message = api_client.post(f"/api/chats/{chat.id}/messages", {"attachment_id": attachment["id"]}, format="json")
    # when
    api_client.delete(f"/api/chats/{chat.id}/messages/{message.json()['id']}")
    # then
    history = api_client.get(f"/api/chats/{chat.id}/messages").json()["results"]
    assert history[0]["deleted"] is True
    assert history[0]["attachment"] is None
    assert history[0]["attachment_url"] is None
    assert Attachment.objects.filter(pk=attachment["id"]).exists()


def test_someone_elses_unshared_upload_cannot_be_sent(make_client, user, other_user, chat):
    # given
    theirs = upload(make_client(other_user), images.png()).json()
    # when
    r = make_client(user).post(f"/api/chats/{chat.id}/messages", {"attachment_id": theirs["id"]}, format="json")
    # then
    assert r.status_code == 400, r.content
    assert r.json() == {"attachment_id": ["No such attachment."]}


def test_a_message_without_text_or_attachment_is_refused(api_client, chat):
    # when
    r = api_client.post(f"/api/chats/{chat.id}/messages", {"content": "  "}, format="json")
    # then
    assert r.status_code == 400, r.content
