"""Reads of users beyond a one-liner."""

from collections.abc import Iterable

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When

from accounts import presence
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


def presence_context(users: Iterable[PublicUser]) -> dict[str, set[int]]:
    """One presence lookup for a whole page of users, as the serializers' context["online_ids"]."""
    return {"online_ids": presence.online_ids(u.pk for u in users)}
