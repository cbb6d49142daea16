import re

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.core.validators import MinLengthValidator, RegexValidator
from django.db import models
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

    @property
    def shown_name(self) -> str:
        return self.display_name or self.username
