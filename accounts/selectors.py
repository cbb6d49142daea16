"""Reads of users beyond a one-liner."""

from collections.abc import Iterable

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When

from accounts import contacts, presence
from accounts.models import User
from accounts.serializers import PublicUser


def user_search(*, query: str, exclude: User | None = None) -> QuerySet[User]:
    """Users whose username or display name contains the query; prefix matches first."""
    term = query.strip()
    queryset = User.objects.filter(is_active=True).filter(Q(username__icontains=term) | Q(display_name__icontains=term))
    if exclude is not None:
        queryset = queryset.exclude(pk=exclude.pk)
    return queryset.annotate(
        rank=Case(
            When(username__istartswith=term, then=Value(0)),
            When(display_name__istartswith=term, then=Value(1)),
            default=Value(2),
            output_field=IntegerField(),
        )
    ).order_by("rank", "username", "id")


def presence_context(users: Iterable[PublicUser], *, viewer: User | None = None) -> dict[str, set[int]]:
    """One presence lookup for a whole page of users, as the serializers' context["online_ids"].

    With a `viewer`, also context["presence_visible_ids"]: those of the users who share a chat with
    the viewer (accounts.contacts); the others' presence is shown as null, and not looked up.
    """
    ids = {u.pk for u in users}
    if viewer is None:
        return {"online_ids": presence.online_ids(ids)}
    visible = contacts.shared_with(viewer.pk, ids)
    return {"online_ids": presence.online_ids(visible), "presence_visible_ids": visible}
