"""/api/docs/ works with no internet: Swagger UI's files come from the server itself (issue 14, item 8)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.test_messenger import expect

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("width, height", [(1440, 900), (390, 844)])
def test_the_api_docs_render_with_every_request_off_the_server_refused(
    browser: Any, e2e_server: str, width: int, height: int
) -> None:
    # given: a browser that can reach the server and nothing else (as on a machine without internet)
    server = urlsplit(e2e_server).netloc
    context = browser.new_context(viewport={"width": width, "height": height})
    elsewhere: list[str] = []

    def only_the_server(route: Any) -> None:
        if urlsplit(route.request.url).netloc == server:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_server)
    try:
        page = context.new_page()
        # when
        page.goto(f"{e2e_server}/api/docs/")
        # then: Swagger UI renders the schema, its operations listed, and asked nothing of another host
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("Messenger API")
        expect(page.locator(".opblock-summary-path", has_text="/api/auth/login").first).to_be_visible()
        assert elsewhere == []
    finally:
        context.close()
