"""A link preview in the browser (contract v1.1, `link_preview`): Alice at 1440 px sends a message
with the URL of a page of the test's own (on 127.0.0.1, allowed by LINK_PREVIEW_ALLOWED_HOSTS);
the server fetches it after the commit, and the card shows under the message on her screen and on
Bob's at 390 px, brought by `message.updated`. Screenshots go to tests/e2e/screenshots/.

A server of its own (SQLite, one process), with LINK_PREVIEWS on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import free_port, own_server_env, start_own_server, stop_own_server
from tests.e2e.direct_chat import alice_and_bob, on_the_chat
from tests.e2e.test_messenger import TIMEOUT_MS, expect
from tests.preview_site import running_site

pytestmark = pytest.mark.e2e

PAGE = """<!doctype html><html><head><title>Harbour notes</title>
<meta property="og:title" content="Tide tables for the harbour">
<meta property="og:description" content="High and low water, week by week.">
<meta property="og:site_name" content="Harbour Office">
<meta property="og:image" content="/card.png">
</head><body>Tides</body></html>"""


def test_a_link_preview_shows_on_both_screens_at_1440_and_390_px(
    browser: Any, tmp_path_factory: pytest.TempPathFactory, screenshot_dir: Path
) -> None:
    contexts: list[Any] = []
    process = None
    with running_site() as site:
        url = site.page("/tides", PAGE)
        data_dir = tmp_path_factory.mktemp("e2e-previews")
        env = own_server_env(data_dir, LINK_PREVIEWS="true", LINK_PREVIEW_ALLOWED_HOSTS=f"127.0.0.1:{site.port}")
        port = free_port()
        try:
            process = start_own_server(env, port, data_dir / "daphne.log")
            # given: Alice at 1440 px and Bob at 390 px, each with their direct chat open
            direct = alice_and_bob(f"http://127.0.0.1:{port}")
            alice = on_the_chat(browser, direct, "alice", viewport=(1440, 900))[1]
            contexts.append(alice.context)
            bob = on_the_chat(browser, direct, "bob", viewport=(390, 844))[1]
            contexts.append(bob.context)

            # when: Alice sends a message with the page's URL
            composer = alice.locator(".composer__input")
            composer.fill(f"The tides for next week: {url}")
            composer.press("Enter")

            # then: the card shows under the message on both screens, the page's image left out
            for page, name in ((alice, "1440"), (bob, "390")):
                message = page.locator(".msg", has_text="The tides for next week")
                card = message.locator(".link-preview")
                expect(card).to_be_visible(timeout=TIMEOUT_MS)
                expect(card.locator(".link-preview__title")).to_have_text("Tide tables for the harbour")
                expect(card.locator(".link-preview__description")).to_have_text("High and low water, week by week.")
                expect(card.locator(".link-preview__site")).to_have_text("Harbour Office")
                assert card.get_attribute("href") == url
                assert card.locator("img").count() == 0
                box, viewport = card.bounding_box(), page.viewport_size
                assert box is not None and viewport is not None
                assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], (name, box)
                page.screenshot(path=str(screenshot_dir / f"link-preview-{name}.png"))
            assert site.hits["/tides"] == 1
            assert site.hits["/card.png"] == 0
        finally:
            for context in contexts:
                context.close()
            stop_own_server(process)
