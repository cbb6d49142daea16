r"""Is a text exactly one emoji? Unicode's emoji grammar (UTS #51, ED-14..ED-17), from the standard
library alone: Python's unicodedata lacks the emoji properties, so the table below stands for
Extended_Pictographic (emoji-data.txt), its ranges merged and the blocks Unicode keeps for future
emoji taken whole. It was written without a copy of the data file at hand: a symbol it misses is
refused (400), never stored wrongly; `regex`'s \p{Extended_Pictographic} would be the exact test if
that dependency is ever added.

    emoji      := flag | keycap | tag_sequence | zwj_sequence
    flag       := regional_indicator regional_indicator
    keycap     := [0-9#*] FE0F? 20E3
    tag_seq    := 1F3F4 tag+ E007F
    zwj_seq    := element (200D element)*
    element    := pictographic (FE0F | FE0E)? modifier?
"""

from bisect import bisect_right

_PICTOGRAPHIC_RANGES = [
    (0x00A9, 0x00A9),
    (0x00AE, 0x00AE),
    (0x203C, 0x203C),
    (0x2049, 0x2049),
    (0x2122, 0x2122),
    (0x2139, 0x2139),
    (0x2194, 0x2199),
    (0x21A9, 0x21AA),
    (0x231A, 0x231B),
    (0x2328, 0x2328),
    (0x2388, 0x2388),
    (0x23CF, 0x23CF),
    (0x23E9, 0x23F3),
    (0x23F8, 0x23FA),
    (0x24C2, 0x24C2),
    (0x25AA, 0x25AB),
    (0x25B6, 0x25B6),
    (0x25C0, 0x25C0),
    (0x25FB, 0x25FE),
    (0x2600, 0x2605),
    (0x2607, 0x2612),
    (0x2614, 0x2685),
    (0x2690, 0x2705),
    (0x2708, 0x2712),
    (0x2714, 0x2714),
    (0x2716, 0x2716),
    (0x271D, 0x271D),
    (0x2721, 0x2721),
    (0x2728, 0x2728),
    (0x2733, 0x2734),
    (0x2744, 0x2744),
    (0x2747, 0x2747),
    (0x274C, 0x274C),
    (0x274E, 0x274E),
    (0x2753, 0x2755),
    (0x2757, 0x2757),
    (0x2763, 0x2767),
    (0x2795, 0x2797),
    (0x27A1, 0x27A1),
    (0x27B0, 0x27B0),
    (0x27BF, 0x27BF),
    (0x2934, 0x2935),
    (0x2B05, 0x2B07),
    (0x2B1B, 0x2B1C),
    (0x2B50, 0x2B50),
    (0x2B55, 0x2B55),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3297),
    (0x3299, 0x3299),
    (0x1F000, 0x1F0FF),
    (0x1F10D, 0x1F10F),
    (0x1F12F, 0x1F12F),
    (0x1F16C, 0x1F171),
    (0x1F17E, 0x1F17F),
    (0x1F18E, 0x1F18E),
    (0x1F191, 0x1F19A),
    (0x1F1AD, 0x1F1E5),
    (0x1F201, 0x1F20F),
    (0x1F21A, 0x1F21A),
    (0x1F22F, 0x1F22F),
    (0x1F232, 0x1F23A),
    (0x1F23C, 0x1F23F),
    (0x1F249, 0x1F3FA),
    (0x1F400, 0x1F53D),
    (0x1F546, 0x1F64F),
    (0x1F680, 0x1F6FF),
    (0x1F774, 0x1F77F),
    (0x1F7D5, 0x1F7FF),
    (0x1F80C, 0x1F80F),
    (0x1F848, 0x1F84F),
    (0x1F85A, 0x1F85F),
    (0x1F888, 0x1F88F),
    (0x1F8AE, 0x1F8FF),
    (0x1F90C, 0x1F93A),
    (0x1F93C, 0x1F945),
    (0x1F947, 0x1FAFF),
    (0x1FC00, 0x1FFFD),
]
_STARTS = [start for start, _ in _PICTOGRAPHIC_RANGES]

ZWJ = 0x200D
VARIATION_EMOJI, VARIATION_TEXT = 0xFE0F, 0xFE0E
KEYCAP = 0x20E3
BLACK_FLAG, CANCEL_TAG = 0x1F3F4, 0xE007F
# Longer than any sequence Unicode defines (a family of four with skin tones is 11 code points).
MAX_CODE_POINTS = 32


def _pictographic(code: int) -> bool:
    index = bisect_right(_STARTS, code) - 1
    return index >= 0 and code <= _PICTOGRAPHIC_RANGES[index][1]


def _regional_indicator(code: int) -> bool:
    return 0x1F1E6 <= code <= 0x1F1FF


def _modifier(code: int) -> bool:
    return 0x1F3FB <= code <= 0x1F3FF


def _tag(code: int) -> bool:
    return 0xE0020 <= code <= 0xE007E


def _element_end(codes: list[int], at: int) -> int | None:
    """Where an element starting at `at` ends, or None when none starts there."""
    if at >= len(codes) or not _pictographic(codes[at]):
        return None
    at += 1
    if at < len(codes) and codes[at] in (VARIATION_EMOJI, VARIATION_TEXT):
        at += 1
    if at < len(codes) and _modifier(codes[at]):
        at += 1
    return at


def is_single_emoji(text: str) -> bool:
    """Whether `text` is exactly one emoji (one grapheme: a ZWJ sequence counts as one)."""
    codes = [ord(char) for char in text]
    if not codes or len(codes) > MAX_CODE_POINTS:
        return False
    if len(codes) == 2 and all(_regional_indicator(code) for code in codes):
        return True
    if codes[-1] == KEYCAP and chr(codes[0]) in "0123456789#*":
        return codes[1:-1] in ([], [VARIATION_EMOJI])
    if codes[0] == BLACK_FLAG and len(codes) >= 3 and codes[-1] == CANCEL_TAG:
        return all(_tag(code) for code in codes[1:-1])
    at = _element_end(codes, 0)
    while at is not None and at < len(codes):
        if codes[at] != ZWJ:
            return False
        at = _element_end(codes, at + 1)
    return at == len(codes)
