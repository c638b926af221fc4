"""SMS text rules (GSM 03.38): which characters GSM-7 carries, the encoding a text needs, its length in
septets or UTF-16 units, and its segments. Pricing and every SMS adapter use these, so what is quoted is what
the vendor is told."""

from __future__ import annotations

GSM7 = "GSM-7"
UCS2 = "UCS-2"
# GSM 03.38 default alphabet, one septet each. ESC (0x1B) is left out on purpose: it only introduces an
# extension character on the air interface, so a literal ESC in a body is not GSM-7 text.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: sent as ESC + character, two septets each.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PART = 160, 153  # septets
UCS2_SINGLE, UCS2_PART = 70, 67  # UTF-16 code units


def non_gsm_characters(text: str) -> list[str]:
    """The distinct characters outside GSM-7 (basic + extension), in order of first appearance.

    These are the characters that force the whole message into UCS-2; the UI highlights them.
    """
    seen: dict[str, None] = {}
    for char in text:
        if char not in GSM7_BASIC and char not in GSM7_EXTENSION:
            seen.setdefault(char)
    return list(seen)


def detect_encoding(text: str) -> str:
    """``"GSM-7"`` when every character is in the GSM-7 basic or extension table, else ``"UCS-2"``."""
    return UCS2 if non_gsm_characters(text) else GSM7


def _weights(text: str, encoding: str) -> list[int]:
    """Size of each character: septets in GSM-7 (extension = 2), UTF-16 code units in UCS-2 (astral = 2)."""
    if encoding == GSM7:
        return [2 if char in GSM7_EXTENSION else 1 for char in text]
    return [2 if ord(char) > 0xFFFF else 1 for char in text]


def encoded_length(text: str, encoding: str | None = None) -> int:
    """Length in septets (GSM-7) or UTF-16 code units (UCS-2); the encoding is detected when not given."""
    return sum(_weights(text, encoding or detect_encoding(text)))


def _pack(weights: list[int], single: int, part: int) -> int:
    """Parts needed when a character (ESC pair, surrogate pair) is never split across two parts."""
    total = sum(weights)
    if total == 0:
        return 0
    if total <= single:
        return 1
    parts, used = 1, 0
    for weight in weights:
        if used + weight > part:
            parts, used = parts + 1, 0
        used += weight
    return parts


def count_segments(text: str, encoding: str | None = None) -> int:
    """SMS segments for ``text``: GSM-7 160 in one part, else 153-septet parts; UCS-2 70, else 67-unit parts.

    An ESC pair or a surrogate pair that would straddle a part boundary moves whole to the next part, so
    a part may hold 152 septets or 66 units. The empty string occupies 0 segments (``quote_message``
    refuses an empty body before it gets here).
    """
    encoding = encoding or detect_encoding(text)
    if encoding == GSM7:
        return _pack(_weights(text, GSM7), GSM7_SINGLE, GSM7_PART)
    return _pack(_weights(text, UCS2), UCS2_SINGLE, UCS2_PART)
