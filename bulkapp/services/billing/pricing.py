"""What a message costs: SMS encoding and segments, units per channel, and the quote the send path charges."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bulkapp.columns import to_decimal
from bulkapp.providers.encoding import (  # noqa: F401 - pricing's callers read the SMS text rules here too
    GSM7,
    GSM7_BASIC,
    GSM7_EXTENSION,
    UCS2,
    count_segments,
    detect_encoding,
    encoded_length,
    non_gsm_characters,
)
from bulkapp.services.messaging.reply_codes import (  # noqa: F401
    GUESS_ODDS,
    MAX_REPLY_CODE_LENGTH,
    REPLY_CODE_LENGTH,
    reply_code_length,
    reply_link_suffix,
)

CHANNELS = ("sms", "whatsapp", "email")


class EmptyBody(ValueError):
    """A message with no text (or only whitespace) cannot be sent, so it has no price."""


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
