"""Running a transaction again when InnoDB chose it as a deadlock's victim.

InnoDB answers some races with a deadlock even when every transaction takes its locks in the
same order: concurrent INSERTs of one unique key where a just-deleted row with that key awaits
purge each take a shared lock on the index and then all ask to insert into the locked gap
(https://dev.mysql.com/doc/refman/8.0/en/innodb-deadlocks-handling.html: "always be prepared
to re-issue a transaction if it fails due to deadlock"). The victim's whole transaction is
rolled back, so the only right answer is to run it again from the start: a write path that
opens its own transaction is wrapped with `retry_deadlocks`. Inside a caller's transaction there
is nothing to retry (the caller's work is gone too): the error goes up to whoever opened it.

SQLite (the embedded default) has the same answer for its one write lock: a writer that waited
the whole busy timeout (settings: "timeout") for it gets "database is locked", and its transaction
did nothing (BEGIN IMMEDIATE asks for the lock before any statement), so it runs again the same way.
"""

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import OperationalError, transaction

logger = logging.getLogger(__name__)

# MySQL/MariaDB's ER_LOCK_DEADLOCK ("Deadlock found when trying to get lock; try restarting transaction").
ER_LOCK_DEADLOCK = 1213
# sqlite3's OperationalError for SQLITE_BUSY (Django passes the message on as the only argument).
SQLITE_LOCKED_MESSAGE = "database is locked"

ATTEMPTS = 4

P = ParamSpec("P")
R = TypeVar("R")


def is_deadlock(error: BaseException) -> bool:
    return isinstance(error, OperationalError) and bool(error.args) and error.args[0] == ER_LOCK_DEADLOCK


def is_sqlite_locked(error: BaseException) -> bool:
    """SQLite's SQLITE_BUSY after the busy timeout ("database is locked"; "... table is locked" is another matter)."""
    return isinstance(error, OperationalError) and bool(error.args) and error.args[0] == SQLITE_LOCKED_MESSAGE


def is_retryable(error: BaseException) -> bool:
    return is_deadlock(error) or is_sqlite_locked(error)


def retry_deadlocks(func: Callable[P, R]) -> Callable[P, R]:
    """Call `func` (which opens its own transaction) again when the database rolled it back for a deadlock
    (or, on SQLite, found the database locked).

    Up to ATTEMPTS calls in all; the last deadlock is raised. What `func` registered with
    on_commit in a rolled-back attempt was dropped with it, so nothing is announced twice.
    """

    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return func(*args, **kwargs)
            except OperationalError as error:
                if not is_retryable(error) or attempt == ATTEMPTS or transaction.get_connection().in_atomic_block:
                    raise
                logger.info("%s: %s (attempt %s of %s); again", func.__qualname__, error, attempt, ATTEMPTS)
        raise AssertionError("unreachable")

    return run
