import math
from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse

from accounts.models import User
from accounts.throttles import LoginAttempts, address_wait


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "display_name", "email", "is_active", "is_staff", "chat_count", "last_seen"]
    list_filter = ["is_active", "is_staff", "is_superuser", "date_joined"]
    search_fields = ["username", "display_name", "email"]
    ordering = ["username"]
    readonly_fields = ["last_login", "date_joined", "last_seen", "chat_count"]
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Profile", {"fields": ("display_name", "email", "pending_email")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Activity", {"fields": ("last_login", "last_seen", "date_joined", "chat_count")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("username", "email", "password1", "password2")}),)

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).annotate(chat_total=Count("memberships", distinct=True))

    @admin.display(description="Chats", ordering="chat_total")
    def chat_count(self, user: User) -> int:
        return getattr(user, "chat_total", 0)


def throttled_admin_login(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
    """The admin site's login, limited as the API's is: a POST counts in the `auth` rate of its
    address (shared with the API's login) and as an attempt on its username (accounts.throttles)."""
    if request.method != "POST":
        return admin.site.login(request, extra_context)
    wait = address_wait(request, "auth")
    attempts = LoginAttempts(str(request.POST.get("username", "")))
    if wait is None:
        wait = attempts.begin()
    if wait is not None:
        response = HttpResponse("Too many login attempts; try again later.\n", status=429, content_type="text/plain")
        response["Retry-After"] = str(math.ceil(wait))
        return response
    before = request.user
    response = admin.site.login(request, extra_context)
    if request.user is not before and request.user.is_authenticated:
        attempts.succeeded()
    return response
