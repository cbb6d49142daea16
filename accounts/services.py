from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.dispatch import Signal

from accounts import email_confirmation, sessions
from accounts.models import User
from messenger.deadlocks import retry_deadlocks

# Sent inside the transaction that changed what others see of a user (display name, avatar), with
# `user_id`. accounts cannot import chats: chats' receiver records a `user.updated` event in the
# transaction's outbox, published to the user's peers after the commit (chats/signals.py).
profile_changed = Signal()


def _check_unique(*, username: str | None = None, email: str | None = None, exclude_id: int | None = None) -> None:
    """Case-insensitive uniqueness, checked before the insert so the error names the field.

    The unique indexes still decide when two requests race (see user_create).
    """
    others = User.objects.exclude(pk=exclude_id) if exclude_id else User.objects.all()
    errors: dict[str, list[str]] = {}
    if username is not None and others.filter(username__iexact=username).exists():
        errors["username"] = ["A user with that username already exists."]
    if email is not None and others.filter(email__iexact=email).exists():
        errors["email"] = ["A user with that email already exists."]
    if errors:
        raise ValidationError(errors)


def user_create(*, username: str, email: str, password: str, display_name: str = "") -> User:
    """Validate, hash the password, then insert in a transaction of its own (_user_insert).

    The email becomes the account's pending address, confirmed by mail (accounts.email_confirmation),
    whether or not another account holds it: the answer never tells.

    The hashing (PBKDF2: a few hundred ms of CPU) comes before the transaction: on SQLite a
    transaction holds the database's one write lock from its BEGIN IMMEDIATE, and hashing inside
    it made concurrent registrations queue for seconds, then fail with "database is locked".
    """
    username = username.strip()
    email = User.objects.normalize_email(email.strip())
    # Validated as the address it will be (the password may not resemble it either), stored as pending.
    user = User(username=username, email=email, display_name=display_name.strip())
    user.full_clean(exclude=["password"], validate_unique=False, validate_constraints=False)
    _check_unique(username=username)
    try:
        validate_password(password, user)
    except ValidationError as error:
        # The validators raise a bare list; name the field so a client can show it there.
        raise ValidationError({"password": error.messages}) from None
    user.set_password(password)
    user.email, user.pending_email = None, email
    return _user_insert(user)


@retry_deadlocks
@transaction.atomic
def _user_insert(user: User) -> User:
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:
        # Another request took the name between the check and the insert.
        _check_unique(username=user.username)
        raise
    email_confirmation.mail_on_commit(user, user.pending_email)
    return user


@retry_deadlocks
@transaction.atomic
def user_update(*, user: User, display_name: str | None = None, email: str | None = None) -> User:
    """Change the profile. A new email needs the current password, which the view checks first,
    under the login's limits (accounts.views.MeView); it stays pending until confirmed by mail."""
    fields: list[str] = []
    if display_name is not None:
        user.display_name = display_name.strip()
        fields.append("display_name")
    if email is not None:
        # Pending until confirmed by mail, taken or not (accounts.email_confirmation); the account's
        # own address (in any case) only cancels a pending change.
        address = User.objects.normalize_email(email.strip())
        same = user.email is not None and user.email.lower() == address.lower()
        user.pending_email = "" if same else address
        fields.append("pending_email")
        if not same:
            email_confirmation.mail_on_commit(user, address)
    if fields:
        # Only the fields changed here: an account whose address still waits for its code has no
        # `email` yet, which must not stop it from changing its display name.
        unchanged = [field.name for field in User._meta.fields if field.name not in fields]
        user.full_clean(exclude=unchanged, validate_unique=False, validate_constraints=False)
        user.save(update_fields=fields)
        if "display_name" in fields:
            profile_changed.send(sender=User, user_id=user.pk)
    return user


def user_password_change(*, user: User, old_password: str, new_password: str) -> User:
    """Check the old password, validate and set the new one. Every session of the user ends
    (User.save: accounts.sessions.sessions_end): the caller issues the tokens of the new one.

    A wrong old password is a ValidationError on `old_password` (a 400: the caller is signed in,
    the body is what is wrong). The hashing comes before the transaction, as in user_create."""
    if not user.check_password(old_password):
        raise ValidationError({"old_password": ["The old password is not correct."]})
    try:
        validate_password(new_password, user)
    except ValidationError as error:
        raise ValidationError({"new_password": error.messages}) from None
    user.set_password(new_password)
    return _password_save(user)


@retry_deadlocks
@transaction.atomic
def _password_save(user: User) -> User:
    user.save(update_fields=["password"])
    return user


@retry_deadlocks
@transaction.atomic
def user_logout_all(*, user: User) -> None:
    """End every session of the user: all their tokens stop working, their sockets close (4401)."""
    sessions.sessions_end(user)


@retry_deadlocks
@transaction.atomic
def user_email_confirm(*, user: User, code: str) -> User:
    """Make the pending address the code names the account's email, if no account took it meanwhile."""
    confirmed = email_confirmation.confirmed_address(code)
    pending = user.pending_email
    if confirmed is None or confirmed != (user.pk, pending.lower()):
        raise ValidationError({"code": ["This code is not valid (or no longer: a newer address was asked for)."]})
    user.email, user.pending_email = pending, ""
    try:
        _check_unique(email=pending, exclude_id=user.pk)
        with transaction.atomic():
            user.save(update_fields=["email", "pending_email"])
    except (ValidationError, IntegrityError):
        # Its owner holds the code, so saying so reveals nothing to anyone else.
        raise ValidationError({"code": ["Another account uses this address now."]}) from None
    return user
