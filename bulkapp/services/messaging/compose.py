"""Sending one message: validate, fill its variables, price it, create and charge it, queue its dispatch.

The dispatch itself (claims, provider calls, results, retries, the stuck sweeper) is services/messaging/dispatch.py; the
recent-messages list is services/messaging/message_list.py.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.exc import IntegrityError

from bulkapp.background import enqueue_after_commit
from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.i18n import N_, stored_sentences
from bulkapp.models import CHANNELS, Client, Contact, Conversation, Message, Template
from bulkapp.phones import InvalidNumber, normalise_msisdn
from bulkapp.public_url import public_base_url
from bulkapp.services.billing import pricing, wallet
from bulkapp.services.channels import routing as channels
from bulkapp.services.compliance import optouts
from bulkapp.services.messaging import shortlinks

log = logging.getLogger(__name__)

MAX_CHARACTERS = {"sms": 1600, "whatsapp": 4096, "email": 100_000}
MAX_SUBJECT = 255
MAX_IDEMPOTENCY_KEY = 255
PREVIEW_LENGTH = 200
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")
# HTTP status the API answers for each error code; anything else is 422.
ERROR_STATUS = {"insufficient_balance": 402, "not_found": 404, "idempotency_conflict": 409, "account_suspended": 403}
# What a SendError says: English in the API and where it is kept (a campaign quote's invalid rows); pages show it in
# the reader's language (i18n.stored_text). The longer "too long" sentence is registered first: it is tried first.
(
    NOT_AN_EMAIL,
    NO_SUCH_CHANNEL,
    NO_VALUE_FOR,
    EMPTY_BODY,
    TOO_LONG_WITH_LINK,
    TOO_LONG,
    SUBJECT_TOO_LONG,
    BAD_IDEMPOTENCY_KEY,
    SUSPENDED,
    IDEMPOTENCY_CONFLICT,
    OPTED_OUT,
    NOT_ENOUGH_BALANCE,
) = stored_sentences(
    N_("This is not a valid email address (%(problem)s)."),
    N_("Choose SMS, WhatsApp or email."),
    N_("No value for %(names)s: give it in the variables or in the contact's fields."),
    N_("Write a message, or choose a template."),
    N_(
        "A message on %(channel)s can be at most %(limit)s characters including the reply link; this one has %(count)s."
    ),
    N_("A message on %(channel)s can be at most %(limit)s characters; this one has %(count)s."),
    N_("The subject can be at most %(limit)s characters."),
    N_("An idempotency key is 1 to 255 characters."),
    N_("This account is suspended, so it cannot send messages. Contact support."),
    N_("This idempotency key was already used for a different message."),
    N_(
        "%(recipient)s has opted out of your messages (replied STOP), so nothing was sent. "
        "They can reply START to subscribe again."
    ),
    N_("This message costs KSh %(cost)s but the balance is KSh %(balance)s. Top up to send it."),
)


class SendError(Exception):
    """A message that cannot be sent. ``code`` is the API error code (``invalid_recipient``, ``empty_body``,
    ``insufficient_balance`` ...), ``message`` a sentence for the user, ``field`` the form field at fault."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    @property
    def status(self) -> int:
        return ERROR_STATUS.get(self.code, 422)


# ------------------------------------------------------------------------------------------ composing


@dataclass(frozen=True)
class Draft:
    """A message ready to be created: ``text`` is the body with variables filled in, before the reply link."""

    channel: str
    recipient: str | None
    text: str
    subject: str | None
    template: Template | None
    contact: Contact | None
    quote: pricing.Quote
    missing: tuple[str, ...] = ()
    whatsapp_template: dict[str, Any] | None = None


def normalise_recipient(channel: str, to: str) -> str:
    """E.164 for SMS and WhatsApp, a normalised address for email; SendError ``invalid_recipient`` otherwise."""
    to = (to or "").strip()
    if channel == "email":
        try:
            return validate_email(to, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise SendError("invalid_recipient", NOT_AN_EMAIL % {"problem": exc}, "to") from None
    try:
        return normalise_msisdn(to)
    except InvalidNumber as exc:
        raise SendError("invalid_recipient", exc.reason, "to") from None


def fill_variables(text: str, values: Mapping[str, str]) -> tuple[str, list[str]]:
    """Replace ``{{name}}`` placeholders from ``values`` (exact name, then lower-case); the placeholders with
    no value stay as written and are returned, in order."""
    missing: list[str] = []

    def substitute(match: re.Match) -> str:
        name = match.group(1)
        value = values.get(name, values.get(name.lower()))
        if value in (None, ""):
            if name not in missing:
                missing.append(name)
            return match.group(0)
        return str(value)

    return PLACEHOLDER.sub(substitute, text), missing


def compose(
    client: Client,
    *,
    to: str | None,
    body: str | None,
    channel: str = "sms",
    subject: str | None = None,
    template_id: int | None = None,
    variables: Mapping[str, Any] | None = None,
    append_reply_link: bool | None = None,
    strict: bool = True,
) -> Draft:
    """Validate and price one message without writing anything.

    The body (or the template's content when the body is blank) gets its ``{{variables}}`` from
    ``variables`` first, then the recipient's contact (name, department, custom fields). ``strict`` (the send
    path) raises :class:`SendError` for a bad recipient or an unfilled placeholder; the live quote
    (``strict=False``) tolerates both: the recipient is None and ``missing`` names the placeholders.
    """
    if channel not in CHANNELS:
        raise SendError("invalid_channel", NO_SUCH_CHANNEL, "channel")
    recipient = None
    if strict or (to or "").strip():
        try:
            recipient = normalise_recipient(channel, to or "")
        except SendError:
            if strict:
                raise
    template = _owned_template(client.id, template_id) if template_id is not None else None
    raw = body if (body or "").strip() else (template.content if template is not None else "")
    contact = _find_contact(client.id, recipient) if recipient else None
    values = {**_contact_values(contact), **_clean_variables(variables)}
    text, missing = fill_variables(raw.replace("\r\n", "\n").replace("\r", "\n").strip(), values)
    if missing and strict:
        names = ", ".join("{{" + name + "}}" for name in missing)
        raise SendError("missing_variables", NO_VALUE_FOR % {"names": names}, "body")
    if not text:
        raise SendError("empty_body", EMPTY_BODY, "body")
    if channel != "sms":
        append_reply_link = bool(append_reply_link)
    try:
        quote = pricing.quote_message(
            client, channel, text, 1, append_reply_link=append_reply_link, base_url=public_base_url()
        )
    except ValueError as exc:  # a tenant's bad units_per_message setting
        raise SendError("invalid_settings", str(exc), "channel") from None
    limit = MAX_CHARACTERS[channel]
    if quote.characters > limit:
        sentence = TOO_LONG_WITH_LINK if quote.reply_link else TOO_LONG
        numbers = {"channel": channels.KIND_LABELS[channel], "limit": f"{limit:,}", "count": f"{quote.characters:,}"}
        raise SendError("message_too_long", sentence % numbers, "body")
    subject = (subject or "").strip() or None
    if channel != "email":
        subject = None
    elif subject is None:
        subject = f"Message from {client.company_name or client.name}"
    elif len(subject) > MAX_SUBJECT:
        raise SendError("invalid_subject", SUBJECT_TOO_LONG % {"limit": MAX_SUBJECT}, "subject")
    whatsapp_template = None
    if channel == "whatsapp" and template is not None and template.whatsapp_template_id:
        params = [str(values.get(name, "")) for name in (template.variables or [])]
        whatsapp_template = {"name": template.whatsapp_template_id, "language": template.whatsapp_language}
        whatsapp_template["params"] = params
    return Draft(channel, recipient, text, subject, template, contact, quote, tuple(missing), whatsapp_template)


@dataclass(frozen=True)
class Preview:
    """The live quote of the composer: ``quote`` is None when ``error`` says why there is nothing to price."""

    quote: pricing.Quote | None
    balance: Decimal
    error: str | None = None
    missing: tuple[str, ...] = ()

    @property
    def balance_after(self) -> Decimal | None:
        return None if self.quote is None else self.balance - self.quote.cost

    @property
    def affordable(self) -> bool:
        return self.quote is not None and self.quote.cost <= self.balance


def preview_message(client_id: int, **kwargs: Any) -> Preview:
    """What :func:`send_message` would charge for these arguments (``to``, ``body``, ``channel``,
    ``template_id``, ``variables``, ``append_reply_link``), for the composer's live quote. Writes nothing."""
    client = db.session.get(Client, client_id)
    try:
        draft = compose(client, strict=False, **kwargs)
    except SendError as exc:
        return Preview(None, client.balance, None if exc.code == "empty_body" else exc.message)
    if draft.recipient and optouts.is_suppressed(client_id, draft.recipient):
        return Preview(None, client.balance, _opted_out(draft.recipient).message)
    return Preview(draft.quote, client.balance, None, draft.missing)


# -------------------------------------------------------------------------------------------- sending


def send_message(
    client_id: int,
    *,
    to: str,
    body: str | None = None,
    channel: str = "sms",
    subject: str | None = None,
    template_id: int | None = None,
    variables: Mapping[str, Any] | None = None,
    append_reply_link: bool | None = None,
    user_id: int | None = None,
    idempotency_key: str | None = None,
    optout_confirmation: bool = False,
) -> Message:
    """Create, charge and queue one outbound message; returns it ``pending`` (or further along when jobs run
    inline).

    Validates the recipient (E.164 for SMS/WhatsApp, an address for email), fills ``{{variables}}``, checks
    the length (SMS 1,600 characters, WhatsApp 4,096, reply link included) and prices it with
    :func:`pricing.quote_message`. Then, all or nothing (one SAVEPOINT): the contact and conversation when
    new, the message with its cost and segments, its reply link (SMS: the stored body is the text as sent,
    link included), the charge ``wallet.debit(reference="message:<id>")`` and the contact's and
    conversation's counters. Finally it enqueues the dispatch on the ``high`` queue.

    Raises :class:`SendError`: ``account_suspended``, ``not_found`` (a template that is not the tenant's),
    ``invalid_recipient``, ``empty_body``, ``missing_variables``, ``message_too_long``, ``recipient_opted_out``
    (the recipient is on the tenant's suppression list; only ``optout_confirmation=True``, the confirmation the
    opt-out handling itself sends, gets through), ``channel_unavailable``, ``insufficient_balance`` (nothing
    written) and ``idempotency_conflict``. The same ``idempotency_key`` with
    the same arguments returns the first message and charges nothing more. Flushes; the caller commits (the
    dispatch is queued when it does).
    """
    fingerprint = _fingerprint(to, body, channel, subject, template_id, variables, append_reply_link)
    if idempotency_key is not None:
        idempotency_key = idempotency_key.strip()
        if not idempotency_key or len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
            raise SendError("invalid_idempotency_key", BAD_IDEMPOTENCY_KEY)
        existing = _by_idempotency_key(client_id, idempotency_key)
        if existing is not None:
            return _replay(existing, fingerprint)
    client = db.session.get(Client, client_id)
    if client is None or not client.status:
        raise SendError("account_suspended", SUSPENDED)
    draft = compose(
        client,
        to=to,
        body=body,
        channel=channel,
        subject=subject,
        template_id=template_id,
        variables=variables,
        append_reply_link=append_reply_link,
    )
    if not optout_confirmation and optouts.is_suppressed(client_id, draft.recipient):
        raise _opted_out(draft.recipient)
    try:
        route = channels.resolve_channel(client_id, channel)
    except channels.ChannelUnavailable as exc:
        raise SendError("channel_unavailable", exc.reason, "channel") from None
    if draft.quote.cost > client.balance:
        raise _insufficient(draft.quote.cost, client.balance)
    try:
        with db.session.begin_nested():
            message = _create_message(client, draft, route, user_id, idempotency_key, fingerprint)
    except wallet.InsufficientBalance:
        db.session.expire(client, ["balance"])
        raise _insufficient(draft.quote.cost, client.balance) from None
    except IntegrityError:
        # Another request with the same idempotency key committed first: answer with its message.
        existing = _by_idempotency_key(client_id, idempotency_key) if idempotency_key else None
        if existing is None:
            raise
        return _replay(existing, fingerprint)
    _enqueue_dispatch(client_id, [message.id])
    return message


def _create_message(
    client: Client, draft: Draft, route: channels.Route, user_id: int | None, key: str | None, fingerprint: str
) -> Message:
    now = utcnow()
    contact = draft.contact or _get_or_create_contact(client.id, draft.recipient)
    conversation = _get_or_create_conversation(client.id, contact, draft.channel)
    meta: dict[str, Any] = {
        "units": draft.quote.total_units,
        "encoding": draft.quote.encoding,
        "price_per_unit": str(draft.quote.price_per_unit),
        "request_fingerprint": fingerprint,
    }
    if user_id is not None:
        meta["sent_by"] = user_id
    if draft.whatsapp_template:
        meta["whatsapp_template"] = draft.whatsapp_template
    message = Message(
        client_id=client.id,
        template_id=draft.template.id if draft.template is not None else None,
        conversation_id=conversation.id,
        channel=draft.channel,
        direction="outbound",
        sender=route.sender,
        channel_id=route.channel_id,
        recipient=draft.recipient,
        subject=draft.subject,
        body=draft.text,
        status="pending",
        segments=draft.quote.segments,
        cost=draft.quote.cost,
        meta=meta,
        idempotency_key=key,
        attempts=0,
    )
    db.session.add(message)
    db.session.flush()
    if draft.quote.reply_link:
        link = shortlinks.create_short_link(client.id, message.id, length=draft.quote.reply_code_length)
        message.body = draft.text + pricing.reply_link_suffix(public_base_url(), link.code)
    if draft.quote.cost > 0:
        units = draft.quote.total_units
        one, many = wallet.MESSAGE_CHARGES[draft.channel]
        wallet.debit(
            client.id,
            draft.quote.cost,
            reference=f"message:{message.id}",
            description=(one if units == 1 else many) % {"recipient": draft.recipient, "units": units},
            meta={"message_id": message.id, "units": units},
        )
    conversation.last_message_preview = draft.text[:PREVIEW_LENGTH]
    conversation.last_message_direction = "outbound"
    conversation.last_message_at = now
    db.session.execute(
        sa.update(Contact)
        .where(Contact.id == contact.id)
        .values(last_message_at=now, total_messages=Contact.total_messages + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.flush()
    return message


def _opted_out(recipient: str) -> SendError:
    return SendError("recipient_opted_out", OPTED_OUT % {"recipient": recipient}, "to")


def _insufficient(cost: Decimal, balance: Decimal) -> SendError:
    numbers = {"cost": f"{cost:,.2f}", "balance": f"{balance:,.2f}"}
    return SendError("insufficient_balance", NOT_ENOUGH_BALANCE % numbers)


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _by_idempotency_key(client_id: int, key: str) -> Message | None:
    return db.session.scalar(sa.select(Message).where(Message.client_id == client_id, Message.idempotency_key == key))


def _replay(message: Message, fingerprint: str) -> Message:
    if (message.meta or {}).get("request_fingerprint") != fingerprint:
        raise SendError("idempotency_conflict", IDEMPOTENCY_CONFLICT, "idempotency_key")
    return message


def _owned_template(client_id: int, template_id: int) -> Template:
    template = db.session.scalar(sa.select(Template).where(Template.client_id == client_id, Template.id == template_id))
    if template is None:
        raise SendError("not_found", "That template does not exist.", "template_id")
    return template


def _find_contact(client_id: int, recipient: str) -> Contact | None:
    return db.session.scalar(sa.select(Contact).where(Contact.client_id == client_id, Contact.contact == recipient))


def _contact_values(contact: Contact | None) -> dict[str, str]:
    if contact is None:
        return {}
    values = {"name": contact.name, "department": contact.department, "contact": contact.contact}
    values.update(contact.fields or {})
    return {str(k): str(v) for k, v in values.items() if v not in (None, "")}


def _clean_variables(variables: Mapping[str, Any] | None) -> dict[str, str]:
    if variables is None:
        return {}
    if not isinstance(variables, Mapping):
        raise SendError("invalid_variables", "Variables must be an object of names and values.", "variables")
    clean = {}
    for name, value in variables.items():
        if isinstance(value, dict | list | tuple | set):
            raise SendError("invalid_variables", f"The variable {name!r} must be text or a number.", "variables")
        if value is not None:
            clean[str(name)] = str(value)
    return clean


def _get_or_create_contact(client_id: int, recipient: str) -> Contact:
    contact = Contact(client_id=client_id, contact=recipient, fields={}, total_messages=0)
    try:
        with db.session.begin_nested():
            db.session.add(contact)
            db.session.flush()
    except IntegrityError:  # created by a concurrent send or import a moment ago
        contact = _find_contact(client_id, recipient)
    return contact


def _get_or_create_conversation(client_id: int, contact: Contact, channel: str) -> Conversation:
    query = sa.select(Conversation).where(
        Conversation.client_id == client_id, Conversation.contact_id == contact.id, Conversation.channel == channel
    )
    conversation = db.session.scalar(query)
    if conversation is not None:
        return conversation
    conversation = Conversation(
        client_id=client_id, contact_id=contact.id, contact_identifier=contact.contact, channel=channel
    )
    try:
        with db.session.begin_nested():
            db.session.add(conversation)
            db.session.flush()
    except IntegrityError:
        conversation = db.session.scalar(query)
    return conversation


def _enqueue_dispatch(client_id: int, message_ids: list[int]) -> None:
    """Queue the dispatch once the caller's transaction commits (a worker never looks for rows it cannot see
    yet, and a rolled-back send queues nothing)."""
    enqueue_after_commit(db.session(), "bulkapp.jobs.messaging.dispatch_messages", (client_id, message_ids), "high")
