"""Reply-link codes: how long a code must be for guesses to stay hopeless, and the text a link adds to an SMS.

Pure arithmetic and formatting (no database): pricing measures the link with these, the short-link service
issues codes of the length they choose.
"""

from __future__ import annotations

REPLY_CODE_LENGTH = 4  # the shortest reply-link code: /x/<code>
MAX_REPLY_CODE_LENGTH = 12  # the widest code short_links.code holds
CODE_ALPHABET_SIZE = 62  # [0-9A-Za-z], case-sensitive
GUESS_ODDS = 10_000  # a random guess hits a live link with probability below 1 in GUESS_ODDS
REPLY_LINK_TEMPLATE = "\nReply: {base_url}/x/{code}"


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
