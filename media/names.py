"""An uploaded file's name made safe to store, show and offer for download.

The name a client sends is text chosen by anyone: it may carry folders (`../../etc/passwd`,
`C:\\Users\\x`), control characters (a newline in a header), bidi controls that make `exe.txt`
read as `txt.exe`, characters Windows refuses in a file name, or a megabyte of text. What is kept:
the last path part, NFC-normalised, with those characters removed or replaced, at most
NAME_MAX_CHARS characters with its extension kept. Emoji survive (their joiners are kept).
"""

import re
import unicodedata
from pathlib import PurePosixPath

NAME_MAX_CHARS = 128
EXTENSION_MAX_CHARS = 16  # a longer "extension" is part of the stem when cutting
# Bidi marks, embeddings, overrides and isolates (accounts.models.BIDI_CONTROLS plus the marks).
BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Zero-width (non-)joiners: format characters that emoji and some scripts need.
KEPT_FORMAT = frozenset("\u200c\u200d")
# Refused in file names on Windows (the download dialog would change them anyway).
RESERVED = re.compile(r'[<>:"|?*]')
SPACES = re.compile(r"\s+")


def safe_name(raw: str) -> str:
    """The name to record for an upload; "" when nothing usable is left."""
    text = unicodedata.normalize("NFC", raw.replace("\\", "/"))
    text = PurePosixPath(text).name if "/" in text else text
    text = "".join(_keep(character) for character in text)
    text = RESERVED.sub("_", text)
    text = SPACES.sub(" ", text).strip(" .")
    return _bounded(text)


def _keep(character: str) -> str:
    if character in BIDI:
        return ""
    category = unicodedata.category(character)
    if category in {"Cc", "Cs", "Zl", "Zp"}:
        return " " if character in "\t\n\r\x0b\x0c\u2028\u2029" else ""
    if category == "Cf" and character not in KEPT_FORMAT:
        return ""
    return character


def _bounded(name: str) -> str:
    if len(name) <= NAME_MAX_CHARS:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) > EXTENSION_MAX_CHARS:
        return name[:NAME_MAX_CHARS].rstrip(" .")
    return stem[: NAME_MAX_CHARS - len(extension) - 1].rstrip(" .") + "." + extension
