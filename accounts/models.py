import re
from typing import Any

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.core.validators import MinLengthValidator, RegexValidator
from django.db import models, transaction
from django.db.models.functions import Lower

username_validator = RegexValidator(
    regex=r"^[A-Za-z0-9_.]+$",
    message="A username may contain only letters, digits, '_' and '.'.",
)


# Bidi embeddings, overrides and isolates: in a name they reorder the text shown after it, wherever
# it is shown ("Remove <U+202E>nimda" reads as another name). The client also removes them.
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def validate_no_bidi_controls(value: str) -> None:
    if BIDI_CONTROLS.search(value):
        raise ValidationError(
            "A display name may not contain bidirectional control characters (U+202A to U+202E, U+2066 to U+2069).",
            code="bidi_control",
        )


class MessengerUserManager(UserManager["User"]):
    def get_by_natural_key(self, username: str | None) -> "User":
        # Logins and lookups ignore case, as the uniqueness rule does.
        return self.get(username__iexact=username)


class User(AbstractUser):
    """A person with an account. Usernames are unique ignoring case; confirmed emails are unique too."""

    username = models.CharField(
        max_length=32,
        unique=True,
        validators=[MinLengthValidator(3), username_validator],
        error_messages={"unique": "A user with that username already exists."},
    )
    # The confirmed address (null until one is confirmed): unique, and a login name. (AbstractUser's is
    # never null, hence the ignore.)
    email = models.EmailField(  # type: ignore[assignment]
        unique=True, null=True, error_messages={"unique": "A user with that email already exists."}
    )
    # The address given at registration or in PATCH /api/auth/me, awaiting its confirmation by mail;
    # not unique, so that neither tells whether an address is taken (accounts.email_confirmation).
    pending_email = models.EmailField(blank=True, default="")
    display_name = models.CharField(max_length=64, blank=True, validators=[validate_no_bidi_controls])
    last_seen = models.DateTimeField(null=True, blank=True)
    # Carried by every token as its `generation` claim; a token of an older generation is refused
    # everywhere (REST, refresh, sockets). Bumped by accounts.sessions.sessions_end: a password
    # change, logging out everywhere, a deactivation.
    session_generation = models.PositiveIntegerField(default=0, editable=False)
    # The sha256 of the profile picture's bytes in the upload store ("" for none), set by media.avatars.
    # A column rather than a foreign key to media's Blob: accounts sits below media, and every user
    # rendering (chat members, senders) reads it from the row it already has, no join or query more.
    # Indexed: deciding whether a blob is still someone's avatar (media cleanup) is a lookup by it.
    avatar_sha256 = models.CharField(max_length=64, blank=True, default="", editable=False, db_index=True)

    objects = MessengerUserManager()  # type: ignore[misc]

    REQUIRED_FIELDS = ["email"]

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("username"), name="user_username_ci_unique"),
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
        ]
        indexes = [models.Index(fields=["display_name"], name="user_display_name_idx")]

    def __str__(self) -> str:
        return self.username

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save; a new password (set_password, e.g. through the admin) or a deactivation also ends
        every session of the user (accounts.sessions), in the same transaction.

        A password rehashed on login (check_password's upgrade) is no new password: set_password
        left `_password` for the save only when a raw password was given."""
        from accounts import sessions

        ends = not self._state.adding and self.pk is not None and sessions.save_ends_sessions(self)
        if not ends:
            super().save(*args, **kwargs)
            return
        raw_password: str | None = getattr(self, "_password", None)
        try:
            with transaction.atomic():
                super().save(*args, **kwargs)
                sessions.sessions_end(self)
        except BaseException:
            self._password = raw_password  # rolled back: still a new password (a retried save ends the sessions)
            raise

    @property
    def shown_name(self) -> str:
        return self.display_name or self.username
