"""What a message costs: SMS encoding and segments, units per channel, and the quote the send path charges."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bulkapp.columns import to_decimal

GSM7 = "GSM-7"
UCS2 = "UCS-2"
CHANNELS = ("sms", "whatsapp", "email")

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

REPLY_CODE_LENGTH = 4  # the shortest reply-link code: /x/<code>
MAX_REPLY_CODE_LENGTH = 12  # the widest code short_links.code holds
CODE_ALPHABET_SIZE = 62  # [0-9A-Za-z], case-sensitive
GUESS_ODDS = 10_000  # a random guess hits a live link with probability below 1 in GUESS_ODDS
REPLY_LINK_TEMPLATE = "\nReply: {base_url}/x/{code}"


class EmptyBody(ValueError):
    """A message with no text (or only whitespace) cannot be sent, so it has no price."""


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


def reply_code_length(live_links: int) -> int:
    """The shortest code length (at least :data:`REPLY_CODE_LENGTH`) at which a random guess hits one of
    ``live_links`` live links with probability below 1 in :data:`GUESS_ODDS`: ``live / 62**L < 1/GUESS_ODDS``.
    4 characters up to 1,477 live links, 5 up to 91,613, 6 up to 5,680,023, 7 up to 352,161,460."""
    length = REPLY_CODE_LENGTH
    while live_links * GUESS_ODDS >= CODE_ALPHABET_SIZE**length and length < MAX_REPLY_CODE_LENGTH:
        length += 1
    return length


def reply_link_suffix(base_url: str, code: str | None = None, *, length: int = REPLY_CODE_LENGTH) -> str:
    """The text the send path appends to an SMS: ``"\\nReply: {base_url}/x/{code}"``.

    Without ``code`` a placeholder of ``length`` characters (the length the real code will have) is used, so a
    quote counts exactly the septets the real link will take (codes are ASCII letters and digits: one GSM-7
    septet each). The send path passes the real code, so both sides format the link in this one place.
    """
    if code is None:
        code = "X" * length
    if not (REPLY_CODE_LENGTH <= len(code) <= MAX_REPLY_CODE_LENGTH and code.isascii() and code.isalnum()):
        raise ValueError(f"reply codes are {REPLY_CODE_LENGTH}-{MAX_REPLY_CODE_LENGTH} letters or digits, got {code!r}")
    return REPLY_LINK_TEMPLATE.format(base_url=base_url.rstrip("/"), code=code)


def units_per_message(client: Any, channel: str, segments: int) -> int:
    """Billable units for one message to one recipient.

    SMS costs one unit per segment. WhatsApp and email cost 1 unit unless the tenant's settings say
    otherwise, e.g. ``{"units_per_message": {"whatsapp": 2}}`` (a whole number >= 0; 0 makes it free).
    """
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    if channel == "sms":
        return segments
    configured = ((client.settings or {}).get("units_per_message") or {}).get(channel, 1)
    if isinstance(configured, str) and configured.isascii() and configured.isdigit():
        configured = int(configured)
    if isinstance(configured, bool) or not isinstance(configured, int) or configured < 0:
        raise ValueError(f"settings units_per_message.{channel} must be a whole number >= 0, got {configured!r}")
    return configured


@dataclass(frozen=True)
class Quote:
    """The price of sending one body to some recipients, as the send path will charge it.

    ``characters`` counts code points of the text as sent (reply link included); ``length`` is the same
    text in septets (GSM-7) or UTF-16 code units (UCS-2). ``segments`` is the SMS part count (always 1
    for WhatsApp and email, which are never split). ``cost`` is exact to 4 decimal places; presentation
    rounds it to 2 elsewhere. ``reply_code_length`` is the length of the reply-link code the price counts
    (0 without a link): the send path must issue a code of exactly that length.
    """

    channel: str
    encoding: str
    characters: int
    length: int
    segments: int
    units_per_recipient: int
    recipients: int
    total_units: int
    price_per_unit: Decimal
    cost: Decimal
    reply_link: bool
    ucs2_characters: list[str] = field(default_factory=list)
    reply_code_length: int = 0


def quote_message(
    client: Any,
    channel: str,
    body: str,
    recipients: int,
    *,
    append_reply_link: bool | None = None,
    base_url: str | None = None,
    code_length: int | None = None,
) -> Quote:
    """Quote ``body`` on ``channel`` to ``recipients`` people at the tenant's ``price_per_unit``.

    This is the one pricing function: the quote API, the composer and the send path all call it, so
    what is shown is what is charged. ``append_reply_link`` defaults to True for SMS and False for other
    channels; when the link is appended it is measured with :func:`reply_link_suffix` on ``base_url``
    (default: the app's public base URL) with a code of ``code_length`` characters (default: the length
    links get now, :func:`bulkapp.services.messaging.shortlinks.current_code_length`). An empty or whitespace-only body
    raises :class:`EmptyBody`.
    """
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    if not body or not body.strip():
        raise EmptyBody("the message body is empty")
    if isinstance(recipients, bool) or not isinstance(recipients, int) or recipients < 0:
        raise ValueError(f"recipients must be a whole number >= 0, got {recipients!r}")
    if append_reply_link is None:
        append_reply_link = channel == "sms"
    text = body
    if append_reply_link:
        # Imported here: shortlinks (and the base-URL helper) read the app; pricing itself stays pure.
        if base_url is None:
            from bulkapp.public_url import public_base_url

            base_url = public_base_url()
        if code_length is None:
            from bulkapp.services.messaging.shortlinks import current_code_length

            code_length = current_code_length()
        text += reply_link_suffix(base_url, length=code_length)
    forcing = non_gsm_characters(text)
    encoding = UCS2 if forcing else GSM7
    # WhatsApp and email are never split: one message is one "segment" whatever its length.
    segments = count_segments(text, encoding) if channel == "sms" else 1
    per_recipient = units_per_message(client, channel, segments)
    total_units = per_recipient * recipients
    price = to_decimal(client.price_per_unit)
    return Quote(
        channel=channel,
        encoding=encoding,
        characters=len(text),
        length=encoded_length(text, encoding),
        segments=segments,
        units_per_recipient=per_recipient,
        recipients=recipients,
        total_units=total_units,
        price_per_unit=price,
        cost=to_decimal(total_units * price),
        reply_link=append_reply_link,
        ucs2_characters=forcing,
        reply_code_length=code_length if append_reply_link else 0,
    )
