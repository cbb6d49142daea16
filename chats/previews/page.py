"""What a preview shows of a page: its Open Graph data, else its <title> and description."""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

from chats.previews.fetch import Page

# What a Message's link_preview keeps of each field (a page may say a lot more).
LIMITS = {"title": 300, "description": 1000, "site_name": 100, "image_url": 2000}


class _Head(HTMLParser):
    """Collects <meta property|name=... content=...> and the first <title>'s text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.title: list[str] = []
        self.in_title = False
        self.title_done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "meta":
            values = {name: value or "" for name, value in attrs}
            key = (values.get("property") or values.get("name") or "").strip().lower()
            if key and "content" in values:
                self.meta.setdefault(key, values["content"])
        elif tag == "title" and not self.title_done:
            self.in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self.in_title:
            self.in_title, self.title_done = False, True

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)


def _text(value: str | None, limit: int) -> str | None:
    cleaned = " ".join((value or "").split())
    if not cleaned:
        return None
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1].rstrip() + "…"


# <meta charset="..."> or <meta http-equiv="Content-Type" content="text/html; charset=...">, for a page
# whose Content-Type names none; HTML puts it in the first 1024 bytes.
META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.IGNORECASE)


def _charset(page: Page) -> str:
    declared = page.charset
    if declared is None:
        found = META_CHARSET.search(page.body[:1024])
        declared = found.group(1).decode("ascii") if found else None
    try:
        return codecs.lookup(declared or "utf-8").name
    except LookupError:
        return "utf-8"


def preview_of(page: Page, *, url: str) -> dict[str, Any] | None:
    """{url, title, description, image_url, site_name} of the page (`url`: the one in the message),
    or None when it names neither a title nor a description."""
    parser = _Head()
    parser.feed(page.body.decode(_charset(page), errors="replace"))
    parser.close()
    meta = parser.meta
    title = _text(meta.get("og:title") or meta.get("twitter:title") or "".join(parser.title), LIMITS["title"])
    description = _text(
        meta.get("og:description") or meta.get("twitter:description") or meta.get("description"),
        LIMITS["description"],
    )
    if title is None and description is None:
        return None
    image = (meta.get("og:image") or meta.get("og:image:url") or meta.get("twitter:image") or "").strip()
    image_url = urljoin(page.url, image) if image else None
    if image_url and (urlsplit(image_url).scheme not in ("http", "https") or len(image_url) > LIMITS["image_url"]):
        image_url = None
    return {
        "url": url,
        "title": title,
        "description": description,
        "image_url": image_url,
        "site_name": _text(meta.get("og:site_name"), LIMITS["site_name"]),
    }
