"""Blobs and attachments in the admin: read-only, since files are written by the upload service only."""

from typing import Any

from django.contrib import admin
from django.db.models import Count, F, Func, IntegerField, OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from media import access
from media.models import Attachment, Blob


class ReferencedFilter(admin.SimpleListFilter):
    title = "referenced"
    parameter_name = "referenced"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "By an attachment"), ("no", "By nothing (cleanup_blobs deletes these)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(attachment_total__gt=0)
        if self.value() == "no":
            return queryset.filter(attachment_total=0)
        return queryset


class ReadOnlyAdmin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting rows here would leave files behind or break messages: use cleanup_blobs.
        return False


@admin.register(Blob)
class BlobAdmin(ReadOnlyAdmin, admin.ModelAdmin[Blob]):
    list_display = ["sha256", "content_type", "size", "width", "height", "attachment_count", "created_at"]
    list_filter = ["content_type", ReferencedFilter, "created_at"]
    search_fields = ["sha256"]
    readonly_fields = ["sha256", "size", "content_type", "width", "height", "created_at", "attachment_count"]
    ordering = ["-id"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Blob]:
        return super().get_queryset(request).annotate(attachment_total=Count("attachments"))

    @admin.display(description="Attachments", ordering="attachment_total")
    def attachment_count(self, blob: Blob) -> int:
        return getattr(blob, "attachment_total", 0)


@admin.register(Attachment)
class AttachmentAdmin(ReadOnlyAdmin, admin.ModelAdmin[Attachment]):
    list_display = ["id", "uploader", "kind", "name", "content_type", "size", "message_count", "created_at"]
    list_filter = ["kind", "blob__content_type", "created_at"]
    search_fields = ["name", "uploader__username", "blob__sha256"]
    readonly_fields = ["blob_link", "uploader", "kind", "name", "original_name", "created_at", "message_count"]
    fields = ["blob_link", "uploader", "kind", "name", "original_name", "created_at", "message_count"]
    list_select_related = ["uploader", "blob"]
    ordering = ["-id"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Attachment]:
        # COUNT over the rows chats says carry it (media.access), since media does not know them.
        carried = access.carriers(OuterRef("pk")).order_by().values(total=Func(F("pk"), function="COUNT"))
        return super().get_queryset(request).annotate(message_total=Subquery(carried, output_field=IntegerField()))

    @admin.display(description="Type", ordering="blob__content_type")
    def content_type(self, attachment: Attachment) -> str:
        return attachment.blob.content_type

    @admin.display(description="Bytes", ordering="blob__size")
    def size(self, attachment: Attachment) -> int:
        return attachment.blob.size

    @admin.display(description="Messages", ordering="message_total")
    def message_count(self, attachment: Attachment) -> int:
        return getattr(attachment, "message_total", 0)

    @admin.display(description="Blob")
    def blob_link(self, attachment: Attachment) -> SafeString:
        url = reverse("admin:media_blob_change", args=[attachment.blob_id])
        return format_html('<a href="{}">{}</a>', url, attachment.blob.sha256)
