import pytest
from django.core.management import call_command

from accounts.models import User
from chats.models import Chat, ChatUser, Message

DEMO_PASSWORD = "messenger-demo"  # documented in README


@pytest.fixture
def demo(db) -> None:
    call_command("loaddata", "demo", verbosity=0)


def test_demo_users_log_in_with_the_documented_password(demo, client):
    for username in ["alice", "bob", "chloe", "dmitri", "emi"]:
        # when
        r = client.post("/api/auth/login", {"username": username, "password": DEMO_PASSWORD}, "application/json")
        # then
        assert r.status_code == 200, r.content


def test_demo_data_is_consistent_with_the_write_paths(demo):
    for chat in Chat.objects.all():
        versions = list(Message.objects.filter(chat=chat).order_by("version").values_list("version", flat=True))
        assert versions == sorted(set(versions))
        assert chat.version == max(versions)
        if not chat.is_group:
            assert ChatUser.objects.filter(chat=chat).count() == 2
    assert Message.objects.filter(deleted=True, content="").exists()
    assert Message.objects.filter(content__contains="🎨").exists()
    assert User.objects.get(username="alice").is_superuser
