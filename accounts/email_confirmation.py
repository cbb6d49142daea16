"""Email addresses are confirmed by mail before they are the account's, so that neither register
nor PATCH /api/auth/me tells anyone whether an address is taken.

Both answer the same for any well-formed address: it becomes the account's `pending_email`, and
one mail goes to it after the commit -- a confirmation code if no account holds the address, a
notice to its owner if one does (the registrant learns nothing; the owner learns of the attempt).
POST /api/auth/email/confirm with the code makes it the account's `email`, unique and usable to
log in. The code is signed (SECRET_KEY), names the user and the address, and expires after
EMAIL_CONFIRM_DAYS; a newer pending address makes an older code useless.
https://docs.djangoproject.com/en/5.2/topics/signing/
"""

from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction

from accounts.models import User

SALT = "accounts.email-confirmation"


def confirmation_code(user: User, address: str) -> str:
    return signing.dumps({"user": user.pk, "email": address.lower()}, salt=SALT, compress=True)


def confirmed_address(code: str) -> tuple[int, str] | None:
    """(user id, address) of a valid, unexpired code, else None."""
    try:
        data = signing.loads(code, salt=SALT, max_age=timedelta(days=settings.EMAIL_CONFIRM_DAYS))
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("user"), int) or not isinstance(data.get("email"), str):
        return None
    return data["user"], data["email"]


def mail_on_commit(user: User, address: str) -> None:
    """After the commit, the code to `address`, or, when another account holds it, a notice to its owner."""
    taken = User.objects.filter(email__iexact=address).exclude(pk=user.pk).exists()
    if taken:
        subject = "Someone tried to use your email address"
        body = (
            f"Someone asked to use {address} for the messenger account {user.username!r}. This address already "
            "belongs to your account, so nothing changed. If you forgot your username, log in with this address."
        )
    else:
        subject = "Confirm your email address"
        body = (
            f"To use {address} for your messenger account {user.username!r}, enter this code in the app "
            f"within {settings.EMAIL_CONFIRM_DAYS} days:\n\n{confirmation_code(user, address)}\n\n"
            "If you did not ask for this, ignore this mail."
        )
    transaction.on_commit(lambda: send_mail(subject, body, None, [address], fail_silently=True))
