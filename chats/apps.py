from django.apps import AppConfig


class ChatsConfig(AppConfig):
    name = "chats"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts import contacts
        from chats import selectors, signals  # noqa: F401  (signals connects the receivers)
        from chats.realtime import sessions  # noqa: F401  (connects accounts.sessions.sessions_ended)
        from media import access

        # media sits below chats and cannot import it: tell it what our messages mean for attachments.
        access.register(attachment_for_viewer=selectors.attachment_for_viewer, carriers=selectors.messages_carrying)
        # Nor can accounts: tell it who shares a chat with whom (presence is shown only to them).
        contacts.register(shared_with=selectors.users_sharing_a_chat)
