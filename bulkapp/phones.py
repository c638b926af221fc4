"""Kenyan phone numbers in every common form, normalised to E.164 with phonenumbers."""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from bulkapp.i18n import N_, stored_sentences

MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
# Reasons stay English wherever they are kept (import reports, rejected messages, the API); pages show them in
# the reader's language through i18n.stored_text.
EMPTY, NOT_A_NUMBER, NOT_VALID, NOT_MOBILE = stored_sentences(
    N_("The number is empty."),
    N_("This is not a phone number."),
    N_("This number is not valid (wrong length or prefix)."),
    N_("This is not a mobile number, so it cannot receive SMS."),
)


class InvalidNumber(ValueError):
    """A number that cannot receive SMS; ``reason`` is a sentence for the user (English, a stored sentence)."""

    def __init__(self, raw: str, reason: str) -> None:
        super().__init__(reason)
        self.raw = raw
        self.reason = reason


def normalise_msisdn(raw: str, region: str = "KE") -> str:
    """``0712 345 678``, ``712345678``, ``254712345678``, ``+254…``, ``00254…`` -> ``+254712345678``."""
    text = (raw or "").strip()
    if not text:
        raise InvalidNumber(raw, EMPTY)
    digits = re.sub(r"[^\d+]", "", text)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if re.fullmatch(r"[17]\d{8}", digits):  # national number without the trunk 0
        digits = "0" + digits
    if re.fullmatch(r"254\d{9}", digits):
        digits = "+" + digits
    try:
        number = phonenumbers.parse(digits, region)
    except NumberParseException:
        raise InvalidNumber(raw, NOT_A_NUMBER) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidNumber(raw, NOT_VALID)
    if phonenumbers.number_type(number) not in MOBILE_TYPES:
        raise InvalidNumber(raw, NOT_MOBILE)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_valid_msisdn(raw: str) -> bool:
    try:
        normalise_msisdn(raw)
    except InvalidNumber:
        return False
    return True
