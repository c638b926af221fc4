"""Provider errors, and the one place that turns any failure into a sentence a shop owner understands.

``reason`` sentences about connections are stored English sentences (:func:`bulkapp.i18n.stored_sentences`):
a message's error, a channel's last test, a notification show them in the reader's language. The technical
details (exception text, the address that failed) go to the log, never to the page.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from bulkapp.i18n import N_, stored_sentences

log = logging.getLogger("bulkapp.providers")

# How a connection problem reads. UNREACHABLE is the same whether the name did not resolve, the port refused
# or never answered, or the TLS handshake failed: the words never tell which port answered.
(
    UNREACHABLE,
    NO_ANSWER,
    MAY_HAVE_ACCEPTED,
    BROKE,
    BROKE_AFTER_SENDING,
    ADDRESS_NOT_PUBLIC,
    PORT_NOT_ALLOWED,
    HTTPS_ONLY,
    BAD_ADDRESS,
    UNEXPECTED,
) = stored_sentences(
    N_("We could not reach %(vendor)s. Check the base URL and try again."),
    N_("%(vendor)s did not answer in time. Try again in a few minutes."),
    N_("%(vendor)s did not answer in time after receiving the request; it may have accepted it."),
    N_("The connection to %(vendor)s broke. Try again in a few minutes."),
    N_("The connection to %(vendor)s broke after the request was sent; it may have accepted it."),
    N_("The address of %(vendor)s is not a public internet address. Check the base URL."),
    N_("The address of %(vendor)s uses a port we do not call; use the standard https port (443)."),
    N_("The address of %(vendor)s must start with https://."),
    N_("The address of %(vendor)s is not a valid URL. Check the base URL."),
    N_("Something went wrong while talking to %(vendor)s. Try again; if it keeps failing, contact support."),
)
MAIL_UNREACHABLE, MAIL_ADDRESS_NOT_PUBLIC, MAIL_PORT_NOT_ALLOWED = stored_sentences(
    N_("We could not reach the mail server %(server)s. Check the server name and port and try again."),
    N_("The mail server is not on a public internet address. Check the server name."),
    N_("Use a standard mail port: 587, 465, 25 or 2525."),
)


class ProviderError(Exception):
    """Base of every provider failure.

    ``reason`` is a plain sentence a tenant can read, ``code`` the vendor's own code (as a string) when it gave
    one, and ``vendor_message`` the vendor's own words, kept verbatim for support.
    """

    def __init__(self, reason: str, *, code: str | None = None, vendor_message: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.vendor_message = vendor_message

    def describe(self) -> str:
        """The reason followed by the vendor's own words, for people reading a settings page or a log."""
        if self.vendor_message and self.vendor_message not in self.reason:
            return f"{self.reason} (the provider said: {self.vendor_message})"
        return self.reason


class TransientError(ProviderError):
    """Nothing was accepted and the same request may be made again later.

    Raised for a connection refused or timed out before anything was sent, 429 (``retry_after`` seconds when the
    vendor said), and the 5xx answers a vendor documents as "nothing accepted" (503, Meta's code 2, ...).
    """

    def __init__(self, reason: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(reason, **kwargs)
        self.retry_after = retry_after


class PermanentError(ProviderError):
    """The vendor refused the request as a whole and will refuse it again until someone changes something."""


class AuthenticationError(PermanentError):
    """The vendor rejected the channel's credentials (wrong key or token, inactive or locked account)."""


class ConfigurationError(PermanentError):
    """The channel settings are incomplete or invalid; ``fields`` names the settings at fault."""

    def __init__(self, reason: str, *, fields: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(reason, **kwargs)
        self.fields = tuple(fields)


class MalformedPayload(ProviderError):
    """A webhook (or a vendor answer) that cannot be understood; an endpoint answers 400 and stores nothing."""


class NotSupported(ProviderError):
    """The vendor has no such feature (e.g. Mobitech sends no incoming messages to us)."""


class OutcomeUnknown(ProviderError):
    """The request was sent but no usable answer came back, so the vendor may have accepted it.

    Raised by :meth:`HttpProvider.request` for non-idempotent calls; ``send_batch`` turns it into ``unknown``
    results and never sends the same messages again.
    """


def explain(exc: BaseException, vendor: str) -> str:
    """The one sentence a tenant sees for any failure of a vendor call (connection test, balance, send).

    A :class:`ProviderError` already carries a plain reason (and the vendor's own words, when it gave any);
    anything else is logged with its details and shown as a plain sentence naming the vendor.
    """
    if isinstance(exc, ProviderError):
        return exc.describe()
    from bulkapp.outbound import OutboundRefused

    if isinstance(exc, OutboundRefused):
        return refused_reason(exc, vendor)
    if isinstance(exc, OSError):  # requests' errors and socket errors alike
        log.warning("could not reach %s: %r", vendor, exc)
        return UNREACHABLE % {"vendor": vendor}
    log.error("call to %s failed unexpectedly", vendor, exc_info=exc)
    return UNEXPECTED % {"vendor": vendor}


def refused_reason(exc: Any, vendor: str) -> str:
    """Why the outbound guard would not call a vendor's address (an ``OutboundRefused``), in plain words."""
    kind = getattr(exc, "kind", "")
    sentence = {"port": PORT_NOT_ALLOWED, "scheme": HTTPS_ONLY, "url": BAD_ADDRESS}.get(kind, ADDRESS_NOT_PUBLIC)
    return sentence % {"vendor": vendor}
