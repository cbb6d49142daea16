from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from chats import services
from chats.models import Chat, ChatUser, Message


class ChatUserInline(admin.TabularInline[ChatUser, Chat]):
    model = ChatUser
    extra = 0
    fields = ["user", "role", "last_read_id", "unread_count", "joined_at"]
    readonly_fields = ["last_read_id", "unread_count", "joined_at"]
    raw_id_fields = ["user"]


@admin.register(Chat)
class ChatAdmin(admin.ModelAdmin[Chat]):
    list_display = ["id", "__str__", "is_group", "member_count", "message_count", "version", "last_activity_at"]
    list_filter = ["is_group", "created_at", "last_activity_at"]
    search_fields = ["title", "memberships__user__username"]
    readonly_fields = ["version", "created_at", "last_activity_at", "direct_key", "member_count", "message_count"]
    inlines = [ChatUserInline]
    ordering = ["-last_activity_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Chat]:
        return (
            super()
            .get_queryset(request)
            .annotate(member_total=Count("memberships", distinct=True), message_total=Count("messages", distinct=True))
        )

    @admin.display(description="Members", ordering="member_total")
    def member_count(self, chat: Chat) -> int:
        return getattr(chat, "member_total", 0)

    @admin.display(description="Messages", ordering="message_total")
    def message_count(self, chat: Chat) -> int:
        return getattr(chat, "message_total", 0)


@admin.action(description="Delete selected messages for everyone (keeps their place)")
def soft_delete(modeladmin: "MessageAdmin", request: HttpRequest, queryset: QuerySet[Message]) -> None:
    count = 0
    for message in queryset.filter(deleted=False, kind=Message.Kind.TEXT):  # system messages stay
        services.message_soft_delete(message=message)
        count += 1
    modeladmin.message_user(request, f"{count} message(s) deleted.", messages.SUCCESS)


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin[Message]):
    list_display = ["id", "chat", "sender", "short_content", "has_attachment", "is_read", "deleted", "created_at"]
    list_filter = ["deleted", "is_read", "chat__is_group", "created_at"]
    search_fields = ["content", "sender__username", "chat__title"]
    list_select_related = ["chat", "sender", "attachment"]
    raw_id_fields = ["chat", "sender", "attachment"]
    readonly_fields = ["chat", "sender", "attachment", "client_id", "version", "created_at", "edited_at", "deleted"]
    fields = [
        "chat",
        "sender",
        "content",
        "attachment",
        "is_read",
        "client_id",
        "version",
        "created_at",
        "edited_at",
        "deleted",
    ]
    actions = [soft_delete]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Messages are written through the API so that versions and events stay right.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        # Hard deletes would leave holes in clients' histories; use the soft-delete action.
        return False

    @admin.display(description="Content")
    def short_content(self, message: Message) -> str:
        return message.content[:80]

    @admin.display(description="Image", boolean=True)
    def has_attachment(self, message: Message) -> bool:
        return message.attachment_id is not None
