"""Rate limits: by the client's address (every throttle), and by username for failed logins.

The client's address is REMOTE_ADDR unless TRUSTED_PROXIES says how many proxies of ours stand in
front of the server: then it is the TRUSTED_PROXIES-th address from the right of X-Forwarded-For,
the one our outermost proxy saw (DRF's NUM_PROXIES semantics,
https://www.django-rest-framework.org/api-guide/throttling/#how-clients-are-identified). Addresses to
its left are whatever the client wrote, so with the default of 0 the header is ignored: a client
that sends a new X-Forwarded-For with every request is still one client. (A header with fewer
entries than TRUSTED_PROXIES gives its leftmost, as DRF does: set it to the proxies there really are.)

A per-address limit alone lets a botnet guess one account's password from many addresses, so login
also counts attempts per username (`LoginAttempts`): LOGIN_FAILURES_PER_USERNAME failures within
LOGIN_FAILURE_WINDOW_SECONDS of the first, and further attempts are 429 until the window ends, with
the right password too (else the limit would only slow the guesser who has not yet guessed). A
success takes back only its own attempt: it never clears the failures others made.
"""

import contextlib
import hashlib
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from rest_framework.exceptions import Throttled
from rest_framework.throttling import ScopedRateThrottle


def client_address(request: HttpRequest) -> str:
    """The address rate limits and logs name the client by (see the module's docstring)."""
    remote = str(request.META.get("REMOTE_ADDR") or "")
    proxies = int(settings.TRUSTED_PROXIES)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies <= 0 or not forwarded:
        return remote
    addresses = [part.strip() for part in str(forwarded).split(",")]
    return addresses[-min(proxies, len(addresses))] or remote


class AddressScopedThrottle(ScopedRateThrottle):
    """DRF's ScopedRateThrottle (authenticated users by id, others by address), by `client_address`."""

    def get_ident(self, request: Any) -> str:
        return client_address(request)


class _Scope:
    """What ScopedRateThrottle reads of a view, for a plain Django view (the admin's login)."""

    def __init__(self, scope: str) -> None:
        self.throttle_scope = scope


def address_wait(request: HttpRequest, scope: str) -> float | None:
    """Count a request in `scope` by its address; the seconds to wait when it is over the rate, else None."""
    throttle = AddressScopedThrottle()
    if throttle.allow_request(request, _Scope(scope)):  # type: ignore[arg-type]
        return None
    return throttle.wait() or 1.0


def check_rate(request: Any, scope: str) -> None:
    """Count a request in `scope`, per user (by address when anonymous); Throttled (429 with
    Retry-After) when it is over the rate. For a limit on some requests of a view only, decided
    after its input is read (a group's creation, not a direct chat's)."""
    wait = address_wait(request, scope)
    if wait is not None:
        raise Throttled(wait)


class LoginAttempts:
    """Attempts to log in as one username within a window (see the module's docstring).

    Counted with the cache's atomic add and incr, before the password is checked, so that
    concurrent guesses cannot all pass a check made before any of them failed.
    """

    def __init__(self, login: str) -> None:
        digest = hashlib.sha256(login.strip().lower().encode()).hexdigest()
        self.key = f"login-attempts:{digest}"
        self.until_key = f"{self.key}:until"

    def begin(self) -> float | None:
        """Count this attempt; the seconds until the window ends when it is one too many, else None."""
        window = int(settings.LOGIN_FAILURE_WINDOW_SECONDS)
        now = time.time()
        cache.add(self.until_key, now + window, window)
        cache.add(self.key, 0, window)
        try:
            attempts = cache.incr(self.key)
        except ValueError:  # the window ended between the add and the incr
            cache.set(self.until_key, now + window, window)
            cache.set(self.key, 1, window)
            attempts = 1
        if attempts <= int(settings.LOGIN_FAILURES_PER_USERNAME):
            return None
        self.succeeded()  # a refused attempt checks no password: it is no failure either
        until = cache.get(self.until_key) or now + window
        return max(1.0, until - now)

    def succeeded(self) -> None:
        """The password was right: this attempt was no failure (the others' still count).

        Also called for an attempt `begin` refused."""
        with contextlib.suppress(ValueError):
            cache.decr(self.key)
