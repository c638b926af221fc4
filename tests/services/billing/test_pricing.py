"""Golden tests for SMS encoding, segments, units per channel and exact quotes at every boundary."""

from decimal import Decimal
from types import SimpleNamespace

import pytest

from bulkapp.services.billing.pricing import (
    GSM7,
    GSM7_BASIC,
    GSM7_EXTENSION,
    UCS2,
    EmptyBody,
    Quote,
    count_segments,
    detect_encoding,
    encoded_length,
    non_gsm_characters,
    quote_message,
    reply_link_suffix,
    units_per_message,
)

EMOJI = "\U0001f600"  # outside the BMP: a surrogate pair, 2 UTF-16 units
BASE = "http://localhost"
SUFFIX = "\nReply: http://localhost/x/XXXX"


def sender(price: str = "0.80", **settings) -> SimpleNamespace:
    return SimpleNamespace(price_per_unit=Decimal(price), settings=settings)


def sms_segments(text: str) -> tuple[str, int, int]:
    return detect_encoding(text), encoded_length(text), count_segments(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a" * 160, (GSM7, 160, 1)),
        ("a" * 161, (GSM7, 161, 2)),
        ("a" * 306, (GSM7, 306, 2)),
        ("a" * 307, (GSM7, 307, 3)),
        ("a" * 158 + "€", (GSM7, 160, 1)),  # an ESC pair still fits a single SMS
        ("a" * 159 + "€", (GSM7, 161, 2)),
        ("a" * 151 + "€" + "a" * 153, (GSM7, 306, 2)),  # the pair ends exactly at septet 153
        ("a" * 152 + "€" + "a" * 152, (GSM7, 306, 3)),  # it would straddle: moves, part 1 holds 152
        ("{" * 80, (GSM7, 160, 1)),
        ("{" * 81, (GSM7, 162, 2)),
        ("{" * 153, (GSM7, 306, 3)),  # 76 pairs (152 septets) per part, not 153 / 2
        ("a" + "{" * 76 + "a" * 153, (GSM7, 306, 2)),
        ("ç" * 70, (UCS2, 70, 1)),
        ("ç" * 71, (UCS2, 71, 2)),
        ("ç" * 134, (UCS2, 134, 2)),
        ("ç" * 135, (UCS2, 135, 3)),
        (EMOJI * 35, (UCS2, 70, 1)),
        (EMOJI * 35 + "a", (UCS2, 71, 2)),
        ("a" * 65 + EMOJI + "a" * 67, (UCS2, 134, 2)),  # the pair ends exactly at unit 67
        ("a" * 66 + EMOJI + "a" * 66, (UCS2, 134, 3)),  # it would straddle: moves, part 1 holds 66
        ("", (GSM7, 0, 0)),
    ],
)
def test_segments_at_every_boundary(text, expected):
    assert sms_segments(text) == expected


def test_every_gsm7_character_is_one_septet_and_extensions_are_two():
    basic = "".join(sorted(GSM7_BASIC))
    extension = "".join(sorted(GSM7_EXTENSION))
    assert len(basic) == 127  # the 128 code points less ESC
    assert sms_segments(basic) == (GSM7, 127, 1)
    assert sms_segments(extension) == (GSM7, 20, 1)
    assert non_gsm_characters(basic + extension) == []


@pytest.mark.parametrize("char", ["ç", "`", "’", "“", "”", "–", "—", "…", EMOJI, "\x1b", "á", "\u2126"])
def test_characters_outside_gsm7_force_ucs2(char):
    assert detect_encoding("Hello " + char) == UCS2
    assert non_gsm_characters("Hello " + char) == [char]


def test_mixed_message_is_ucs2_throughout_and_lists_the_culprits_once():
    text = "Don’t miss it… {50% off} ’ " + EMOJI
    assert non_gsm_characters(text) == ["’", "…", EMOJI]
    # In UCS-2 an extension character like { is one unit; the emoji is two.
    assert sms_segments(text) == (UCS2, len(text) + 1, 1)
    assert detect_encoding("Karibu! Ölçü") == UCS2  # ç is not GSM-7, although Ç is
    assert detect_encoding("Karibu! ÖÇÜ £5 €5 [ok]") == GSM7


def test_reply_link_suffix_is_as_long_as_a_real_link():
    assert reply_link_suffix(BASE) == SUFFIX
    assert reply_link_suffix(BASE + "/") == SUFFIX
    assert reply_link_suffix(BASE, "aB3k") == "\nReply: http://localhost/x/aB3k"
    assert len(reply_link_suffix(BASE, "aB3k")) == len(reply_link_suffix(BASE))
    assert reply_link_suffix(BASE, length=6) == "\nReply: http://localhost/x/XXXXXX"
    assert len(reply_link_suffix(BASE, "aB3kZ9")) == len(reply_link_suffix(BASE, length=6))
    for bad in ("abc", "ab-d", "a" * 13, "abcé"):
        with pytest.raises(ValueError):
            reply_link_suffix(BASE, bad)


def test_reply_link_pushes_150_characters_over_one_sms():
    body = "a" * 150
    with_link = quote_message(sender(), "sms", body, 1, base_url=BASE)
    without = quote_message(sender(), "sms", body, 1, append_reply_link=False, base_url=BASE)
    assert (with_link.characters, with_link.length, with_link.segments) == (181, 181, 2)
    assert (without.characters, without.length, without.segments) == (150, 150, 1)
    assert with_link.reply_link and not without.reply_link


def test_quote_uses_the_app_base_url_by_default(app):
    assert app.config["BASE_URL"] == BASE
    quote = quote_message(sender(), "sms", "a" * 129, 1)
    assert quote.length == 129 + len(SUFFIX) == 160 and quote.segments == 1


def test_full_sms_quote(tenant):
    quote = quote_message(tenant, "sms", "Habari " + EMOJI, 3, base_url=BASE)
    assert quote == Quote(
        channel="sms",
        encoding=UCS2,
        characters=8 + len(SUFFIX),
        length=9 + len(SUFFIX),
        segments=1,
        units_per_recipient=1,
        recipients=3,
        total_units=3,
        price_per_unit=Decimal("0.8000"),
        cost=Decimal("2.4000"),
        reply_link=True,
        ucs2_characters=[EMOJI],
        reply_code_length=4,
    )


def test_cost_is_exact():
    body = "a" * (459 - len(SUFFIX))  # with the link: 459 septets = 3 x 153
    quote = quote_message(sender("0.7500"), "sms", body, 1000, base_url=BASE)
    assert (quote.segments, quote.units_per_recipient, quote.total_units) == (3, 3, 3000)
    assert quote.cost == Decimal("2250.0000") and str(quote.cost) == "2250.0000"
    odd = quote_message(sender("0.7525"), "sms", "hi", 7, append_reply_link=False)
    assert odd.cost == Decimal("5.2675")
    nobody = quote_message(sender("0.7525"), "sms", "hi", 0, append_reply_link=False)
    assert nobody.total_units == 0 and nobody.cost == Decimal("0.0000")


def test_whatsapp_and_email_cost_one_unit_unless_the_tenant_says_otherwise():
    long_body = "x" * 1000  # would be 7 SMS segments; irrelevant off SMS
    for channel in ("whatsapp", "email"):
        quote = quote_message(sender("1.5000"), channel, long_body, 10)
        assert (quote.segments, quote.units_per_recipient, quote.total_units) == (1, 1, 10)
        assert quote.cost == Decimal("15.0000") and not quote.reply_link and quote.characters == 1000
    custom = sender("1.5000", units_per_message={"whatsapp": 2, "email": "0", "sms": 9})
    assert quote_message(custom, "whatsapp", "hi", 10).total_units == 20
    assert quote_message(custom, "email", "hi", 10).cost == Decimal("0.0000")
    assert units_per_message(custom, "sms", 3) == 3  # SMS is always priced by segments


@pytest.mark.parametrize("bad", [-1, "two", 1.5, True, None, "²"])
def test_bad_units_setting_is_refused(bad):
    with pytest.raises(ValueError, match="units_per_message.whatsapp"):
        quote_message(sender(units_per_message={"whatsapp": bad}), "whatsapp", "hi", 1)


@pytest.mark.parametrize("body", ["", "   ", "\n\t"])
def test_empty_body_cannot_be_quoted(body):
    with pytest.raises(EmptyBody):
        quote_message(sender(), "sms", body, 1, base_url=BASE)


def test_bad_channel_or_recipient_count_is_refused():
    with pytest.raises(ValueError, match="channel"):
        quote_message(sender(), "fax", "hi", 1)
    with pytest.raises(ValueError, match="recipients"):
        quote_message(sender(), "sms", "hi", -1, base_url=BASE)
