from typing import cast

from rest_framework.request import Request

from accounts.models import User


def request_user(request: Request) -> User:
    """The authenticated caller. Views behind IsAuthenticated never see an anonymous user."""
    return cast(User, request.user)
