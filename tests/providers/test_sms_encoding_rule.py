"""One GSM-7 rule for pricing and for the vendors' unicode flag: a text priced as UCS-2 is sent as Unicode.

Onfon is the one adapter with a flag (``IsUnicode``); Twilio and Mobitech choose the encoding themselves from the
text, so for them the price is all that depends on the rule. ESC (U+001B) only introduces an extension character
in GSM 03.38, so a literal ESC is not GSM-7 text: it makes the message UCS-2, in the quote and on the wire.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bulkapp.providers.base import OutboundMessage
from bulkapp.providers.onfon import OnfonProvider, is_gsm7
from bulkapp.services.billing import pricing
from tests.simulators.base import segments
from tests.simulators.onfon import OnfonSimulator

CLIENT = SimpleNamespace(price_per_unit="0.80", settings={})
TEXTS = ["Hello", "Price: 100€ {promo} [x] ~^|\\", "Karibu\x1b", "\x1b", "Café ç", "Asante 🙏", "a\x1b€"]


@pytest.mark.parametrize("text", TEXTS)
def test_the_onfon_flag_follows_the_pricing_rule(text):
    quote = pricing.quote_message(CLIENT, "sms", text, 1, append_reply_link=False)
    assert is_gsm7(text) == (quote.encoding == pricing.GSM7)


def test_esc_is_priced_as_ucs2():
    quote = pricing.quote_message(CLIENT, "sms", "Karibu\x1b", 1, append_reply_link=False)
    assert (quote.encoding, quote.ucs2_characters) == (pricing.UCS2, ["\x1b"])


@pytest.mark.parametrize(("text", "unicode"), [("Karibu\x1b", True), ("Karibu €", False), ("Karibu ç", True)])
def test_onfon_sends_what_was_quoted(text, unicode):
    with OnfonSimulator() as sim, OnfonProvider(sim.credentials, sim.config()) as provider:
        (result,) = provider.send_batch([OutboundMessage(id=1, to="+254712345678", body=text)])
        assert result.status == "accepted"
        assert sim.unicode_flags[text] is unicode
    quote = pricing.quote_message(CLIENT, "sms", text, 1, append_reply_link=False)
    assert (quote.encoding == pricing.UCS2) is unicode
    assert segments(text) == quote.segments  # the simulated vendor bills the same parts


def test_a_batch_mixing_esc_and_gsm_texts_goes_in_two_requests_with_the_right_flags():
    with OnfonSimulator() as sim, OnfonProvider(sim.credentials, sim.config()) as provider:
        messages = [
            OutboundMessage(id=1, to="+254712345678", body="Plain"),
            OutboundMessage(id=2, to="+254712345679", body="Esc\x1b"),
        ]
        assert [r.status for r in provider.send_batch(messages)] == ["accepted", "accepted"]
        assert sim.unicode_flags == {"Plain": False, "Esc\x1b": True}
