"""Which URL of a message's text gets a preview: the first http(s) one, found as the client finds
the links it makes clickable (client/renderer/js/dom.js `linkified`)."""

from __future__ import annotations

import re

URL = re.compile(r"\bhttps?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]", re.IGNORECASE)
# A longer URL gets no preview (and no cache row).
MAX_URL_LENGTH = 2000


def first_url(text: str | None) -> str | None:
    match = URL.search(text or "")
    if match is None or len(match.group(0)) > MAX_URL_LENGTH:
        return None
    return match.group(0)
