"""The OpenAPI schema tells the truth: schemathesis calls every operation with generated input,
valid and invalid, authenticated and not, and checks that each answer's status is documented for
it, that its body matches the documented shape, and that nothing answers 5xx.

Bounded and deterministic (a fixed number of examples per operation, derandomized), so it runs in
the normal suite. A failure names the operation, the check and a curl line to reproduce it.
"""

from collections.abc import Iterator

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from chats import services
from tests.conftest import bearer
from tests.factories import group_with

EXAMPLES_PER_OPERATION = 25

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@pytest.fixture
def connections_kept() -> Iterator[None]:
    """The WSGI app closes the database connection after each request, as a server does; the test's
    transaction lives on that connection (Django's test client disconnects the same handlers)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def rows(user, other_user, chat):
    """Something for generated ids to find: a direct chat with a message, a group the user owns."""
    services.message_create(chat_id=chat.pk, sender=user, content="hello")
    return group_with(user, other_user)


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_is_documented_and_no_answer_is_a_server_error(case, user, rows, connections_kept):
    case.call_and_validate(
        headers={"Authorization": bearer(user)},
        checks=[
            not_a_server_error,
            status_code_conformance,
            response_schema_conformance,
            content_type_conformance,
            response_headers_conformance,
        ],
    )
