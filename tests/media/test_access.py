"""media.access: media asks chats about attachments through what ChatsConfig.ready() registered."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from media import access


def test_before_chats_registers_media_refuses_to_guess_what_is_in_use(monkeypatch):
    # given: nothing registered (as if the chats app were not installed)
    monkeypatch.setattr(access, "_rules", None)
    # when / then: no answer, rather than "nothing carries it" (cleanup would delete what messages show)
    with pytest.raises(ImproperlyConfigured):
        access.carriers(1)
