"""Files in the browser (issue 14): a PDF from the picker, an image dropped on the chat, a pasted file,
several at once with one cancelled, a refused upload shown as failed with a retry, a file too large
refused before it is sent, the other side's card downloading the exact bytes, and the gallery's
Images / Files tabs. Each at a desktop width and a phone's."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.direct_chat import DirectChat, alice_and_bob, on_the_chat
from tests.e2e.test_messenger import expect, png_bytes

pytestmark = pytest.mark.e2e

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n" + bytes(range(256)) * 8

# Build a File in the page and hand it over as a real DataTransfer, the way a drag or a paste does.
DRAG = """([selector, type, name, mime, bytes]) => {
  const transfer = new DataTransfer();
  transfer.items.add(new File([new Uint8Array(bytes)], name, { type: mime }));
  const event = new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: transfer });
  document.querySelector(selector).dispatchEvent(event);
  return event.defaultPrevented;
}"""
PASTE = """([name, mime, bytes]) => {
  const transfer = new DataTransfer();
  transfer.items.add(new File([new Uint8Array(bytes)], name, { type: mime }));
  const event = new ClipboardEvent('paste', { bubbles: true, cancelable: true, clipboardData: transfer });
  document.querySelector('.composer__input').dispatchEvent(event);
  return event.defaultPrevented;
}"""
PICK_HUGE = """([name, size]) => {
  const input = document.getElementById('composer-file');
  const transfer = new DataTransfer();
  transfer.items.add(new File([new Uint8Array(size)], name));
  input.files = transfer.files;
  input.dispatchEvent(new Event('change', { bubbles: true }));
}"""


class Side:
    def __init__(self, context: Any, page: Any) -> None:
        self.context = context
        self.page = page

    def pick(self, *files: tuple[str, str, bytes]) -> None:
        self.page.locator("#composer-file").set_input_files(
            files=[{"name": name, "mimeType": mime, "buffer": data} for name, mime, data in files]
        )

    def row(self, name: str) -> Any:
        return self.page.locator(".composer__upload .upload", has_text=name)

    def send(self) -> None:
        expect(self.page.locator(".composer__send")).to_be_enabled()
        self.page.locator(".composer__input").press("Enter")

    def download(self, card: Any) -> bytes:
        name = card.locator(".file-card__name").inner_text()
        with self.page.expect_download() as info:
            card.get_by_role("button", name=f"Download {name}").click()
        download = info.value
        assert download.suggested_filename == name
        return Path(download.path()).read_bytes()


@pytest.fixture(params=[(1440, 900), (390, 844)], ids=["1440px", "390px"])
def chat(request: pytest.FixtureRequest, browser: Any, e2e_server: str) -> Iterator[tuple[DirectChat, Side, Side]]:
    """Alice and Bob, each in a browser of their own at the width under test, on their direct chat."""
    direct = alice_and_bob(e2e_server)
    alice = Side(*on_the_chat(browser, direct, "alice", viewport=request.param)[:2])
    bob = Side(*on_the_chat(browser, direct, "bob", viewport=request.param)[:2])
    try:
        yield direct, alice, bob
    finally:
        alice.context.close()
        bob.context.close()


def test_a_pdf_from_the_picker_reaches_the_other_side_as_a_card_that_downloads_the_exact_bytes(
    chat: tuple[DirectChat, Side, Side], screenshot_dir: Path, request: pytest.FixtureRequest
) -> None:
    direct, alice, bob = chat
    # when Alice picks a PDF and sends it
    alice.pick(("report.pdf", "application/pdf", PDF))
    expect(alice.row("report.pdf")).to_contain_text("Ready")
    alice.send()
    # then Bob sees a card with its type, name and size, never an image
    card = bob.page.locator(".msg--other .file-card")
    expect(card).to_have_count(1)
    expect(card.locator(".file-card__name")).to_have_text("report.pdf")
    expect(card.locator(".file-card__meta")).to_have_text("PDF · 2 KB")
    expect(card.locator(".file-icon--pdf")).to_be_visible()
    expect(bob.page.locator(".msg--other img.bubble__image")).to_have_count(0)
    bob.page.screenshot(path=str(screenshot_dir / f"files-card-{request.node.callspec.id}.png"))
    # and the download (with his token) saves exactly the bytes Alice sent, under its name
    assert bob.download(card) == PDF
    # and the sidebar names the file
    expect(bob.page.locator(".chat-list .chat-item", has_text=f"Alice {direct.suffix}")).to_contain_text(
        "File: report.pdf"
    )


def test_an_image_dropped_on_the_chat_shows_the_drop_zone_and_is_sent(
    chat: tuple[DirectChat, Side, Side], screenshot_dir: Path, request: pytest.FixtureRequest
) -> None:
    _, alice, bob = chat
    image = list(png_bytes((200, 60, 60)))
    # when a file is dragged over the history, the drop zone shows
    assert alice.page.evaluate(DRAG, [".chat__messages", "dragenter", "drop.png", "image/png", image])
    assert alice.page.evaluate(DRAG, [".chat__messages", "dragover", "drop.png", "image/png", image])
    expect(alice.page.locator(".drop-zone")).to_be_visible()
    alice.page.screenshot(path=str(screenshot_dir / f"files-drop-zone-{request.node.callspec.id}.png"))
    # and when it is dropped, it uploads with a preview of its own bytes and the zone goes
    assert alice.page.evaluate(DRAG, [".chat__messages", "drop", "drop.png", "image/png", image])
    expect(alice.page.locator(".drop-zone")).to_be_hidden()
    expect(alice.row("drop.png")).to_contain_text("Ready")
    expect(alice.row("drop.png").locator("img.composer__preview")).to_have_count(1)
    alice.send()
    # then Bob receives the image itself
    received = bob.page.locator(".msg--other img.bubble__image")
    expect(received).to_have_count(1)
    bob.page.wait_for_function("img => img.complete && img.naturalWidth === 320", arg=received.element_handle())


def test_a_pasted_file_is_uploaded_and_sent(chat: tuple[DirectChat, Side, Side]) -> None:
    _, alice, bob = chat
    notes = b"pasted notes\n" * 40
    # when Alice pastes a file into the composer, the browser does not paste its name as text
    assert alice.page.evaluate(PASTE, ["notes.txt", "text/plain", list(notes)])
    expect(alice.row("notes.txt")).to_contain_text("Ready")
    assert alice.page.locator(".composer__input").input_value() == ""
    alice.page.locator(".composer__input").fill("the notes")
    alice.send()
    # then Bob gets the text and the file in one message, and the bytes are the pasted ones
    message = bob.page.locator(".msg--other", has_text="the notes")
    expect(message.locator(".file-card__name")).to_have_text("notes.txt")
    assert bob.download(message.locator(".file-card")) == notes


def test_several_files_upload_side_by_side_and_a_cancelled_one_is_never_sent(
    chat: tuple[DirectChat, Side, Side], screenshot_dir: Path, request: pytest.FixtureRequest
) -> None:
    _, alice, bob = chat
    # given the server has not yet received slow.bin (its request is held) while the others go through
    held: list[Any] = []
    failed: list[str] = []
    alice.page.on("requestfailed", lambda r: failed.append(r.url) if "/api/attachments" in r.url else None)

    def hold_slow(route: Any) -> None:
        if b'filename="slow.bin"' in (route.request.post_data_buffer or b""):
            held.append(route)
        else:
            route.continue_()

    alice.page.route("**/api/attachments", hold_slow)
    try:
        # when she picks three files at once
        alice.pick(
            ("a.pdf", "application/pdf", PDF),
            ("slow.bin", "application/octet-stream", b"\x00slow" * 100),
            ("table.csv", "text/csv", b"a,b\n1,2\n"),
        )
        # then each has its own row; the held one shows its progress and a cancel, and holds back the send
        expect(alice.page.locator(".composer__upload .upload")).to_have_count(3)
        expect(alice.row("a.pdf")).to_contain_text("Ready")
        expect(alice.row("table.csv")).to_contain_text("Ready")
        expect(alice.row("slow.bin").locator("progress")).to_be_visible()
        expect(alice.page.locator(".composer__send")).to_be_disabled()
        alice.page.screenshot(path=str(screenshot_dir / f"files-several-{request.node.callspec.id}.png"))
        # when she cancels it, its request is aborted and its row goes
        alice.page.get_by_role("button", name="Cancel upload of slow.bin").click()
        expect(alice.row("slow.bin")).to_have_count(0)
        expect(alice.page.locator(".composer__upload .upload")).to_have_count(2)
        assert held, "the slow upload never reached the server"
        alice.send()
    finally:
        for route in held:
            with contextlib.suppress(Exception):
                route.abort()
        alice.page.unroute("**/api/attachments")
    # then Bob gets the two others, one message each, and never the cancelled one
    expect(bob.page.locator(".msg--other .file-card__name")).to_have_text(["a.pdf", "table.csv"])
    assert failed, "the cancelled upload's request was not aborted"
    expect(alice.page.locator(".composer__upload")).to_be_hidden()


def test_a_refused_upload_shows_the_servers_reason_and_a_retry_that_sends_it(
    chat: tuple[DirectChat, Side, Side],
) -> None:
    _, alice, bob = chat
    reason = "Your uploads use 1.0 GB of 1.0 GB; delete some to make room."
    # given the server refuses the first attempt
    alice.page.route(
        "**/api/attachments",
        lambda route: route.fulfill(status=413, content_type="application/json", body=f'{{"detail": "{reason}"}}'),
        times=1,
    )
    alice.pick(("photo.png", "image/png", png_bytes()))
    # then the row is failed with the server's words, with a retry and no thumbnail, broken or not
    row = alice.row("photo.png")
    expect(row.locator(".field__error")).to_have_text(reason)
    expect(row.locator("img")).to_have_count(0)
    expect(row.locator(".file-icon")).to_be_visible()
    expect(alice.page.locator(".composer__send")).to_be_enabled()
    # when she retries (the server takes it now), it is ready and goes out
    row.get_by_role("button", name="Retry photo.png").click()
    expect(row).to_contain_text("Ready")
    expect(row.locator("img.composer__preview")).to_have_count(1)
    alice.send()
    expect(bob.page.locator(".msg--other img.bubble__image")).to_have_count(1)


def test_a_file_over_the_servers_limit_is_refused_before_it_is_sent(chat: tuple[DirectChat, Side, Side]) -> None:
    _, alice, _ = chat
    uploads: list[str] = []
    alice.page.on("request", lambda r: uploads.append(r.url) if r.url.endswith("/api/attachments") else None)
    limit = alice.page.evaluate("() => fetch('/api/config').then((r) => r.json()).then((c) => c.file_max_bytes)")
    # when she picks a file one MB over the limit GET /api/config names
    alice.page.evaluate(PICK_HUGE, ["huge.bin", limit + 1024 * 1024])
    # then it is refused with both sizes, with no retry, and nothing was uploaded
    row = alice.row("huge.bin")
    size = f"{(limit + 1024 * 1024) / 1024 / 1024:.1f} MB"
    expect(row.locator(".field__error")).to_have_text(
        f"huge.bin is {size}; a file can be at most {limit / 1024 / 1024:.1f} MB."
    )
    expect(row.get_by_role("button", name="Retry huge.bin")).to_have_count(0)
    row.get_by_role("button", name="Remove huge.bin").click()
    expect(alice.page.locator(".composer__upload")).to_be_hidden()
    assert uploads == []


def test_the_gallery_has_images_and_files_tabs_and_the_media_dialog_lists_every_chat(
    chat: tuple[DirectChat, Side, Side], screenshot_dir: Path, request: pytest.FixtureRequest
) -> None:
    direct, alice, bob = chat
    alice.pick(("sunset.png", "image/png", png_bytes()))
    expect(alice.row("sunset.png")).to_contain_text("Ready")
    alice.send()
    alice.pick(("report.pdf", "application/pdf", PDF))
    expect(alice.row("report.pdf")).to_contain_text("Ready")
    alice.send()
    expect(bob.page.locator(".msg--other .file-card")).to_have_count(1)

    # the chat's gallery opens on Images: the one photo, and not the PDF
    bob.page.get_by_role("button", name="Shared media").click()
    panel = bob.page.locator(".panel")
    expect(panel.get_by_role("tab", name="Images")).to_have_attribute("aria-selected", "true")
    expect(panel.locator(".gallery__item img")).to_have_count(1)
    # Files lists the PDF with its size, sender and date, and downloads it
    panel.get_by_role("tab", name="Files").click()
    expect(panel.get_by_role("tab", name="Files")).to_have_attribute("aria-selected", "true")
    row = panel.locator(".file-list .file-card")
    expect(row).to_have_count(1)
    expect(row.locator(".file-card__name")).to_have_text("report.pdf")
    expect(row.locator(".file-card__meta")).to_have_text("PDF · 2 KB")
    expect(row.locator(".file-card__details")).to_contain_text(f"Alice {direct.suffix}")
    bob.page.screenshot(path=str(screenshot_dir / f"files-gallery-{request.node.callspec.id}.png"))
    assert bob.download(row) == PDF
    bob.page.get_by_role("button", name="Close panel").click()

    # the account's Media dialog (GET /api/media) shows the same, naming the chat
    back = bob.page.get_by_role("button", name="Back to chats")
    if back.is_visible():
        back.click()
    bob.page.get_by_role("button", name="Media", exact=True).click()
    dialog = bob.page.get_by_role("dialog", name="Media")
    expect(dialog.locator(".gallery__item img")).to_have_count(1)
    dialog.get_by_role("tab", name="Files").click()
    expect(dialog.locator(".file-card__details")).to_contain_text(f"in Alice {direct.suffix}")
    bob.page.screenshot(path=str(screenshot_dir / f"files-media-dialog-{request.node.callspec.id}.png"))
