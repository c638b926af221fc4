"""A launch's message rows: each recipient's text and price, reply-link codes, and the bulk INSERTs (multi-row
VALUES on SQLite; on PostgreSQL one ``INSERT ... SELECT FROM unnest(arrays)`` per chunk, which psycopg sends as
a few array parameters instead of parsing a statement with tens of thousands of placeholders)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from bulkapp.columns import Money, money_to_storage
from bulkapp.extensions import db
from bulkapp.models import Campaign, Client, Message, ShortLink, Template
from bulkapp.public_url import public_base_url
from bulkapp.services.billing import pricing
from bulkapp.services.campaigns.recipients import Recipient, Tally, candidates, resolve, retry_candidates
from bulkapp.services.channels import routing as channels
from bulkapp.services.compliance import optouts
from bulkapp.services.messaging import shortlinks
from bulkapp.services.messaging.templates import render as render_text

_ALPHABET = shortlinks.ALPHABET.encode()
_DEDUPE = ["campaign_id", "campaign_run", "recipient"]  # one message per recipient per run


def campaign_content(campaign: Campaign) -> str:
    if (campaign.message or "").strip():
        return campaign.message
    if campaign.template_id is not None:
        template = db.session.get(Template, campaign.template_id)
        if template is not None and template.client_id == campaign.client_id:
            return template.content or ""
    return ""


class TextBuilder:
    """The text each recipient gets (variables filled, promotional SMS footer) and its price, cached by text.
    The reply-link code length is chosen once, here: every link of a launch gets it, and its price counts it."""

    def __init__(self, client: Client, channel: str, kind: str, content: str) -> None:
        self.client = client
        self.channel = channel
        self.content = content.replace("\r\n", "\n").replace("\r", "\n").strip()
        self.suffix = f"\n{optouts.footer(client)}" if kind == "promotional" and channel == "sms" else ""
        self.static = "{{" not in self.content
        self.base_url = public_base_url()
        self.code_length = shortlinks.current_code_length() if channel == "sms" else 0
        self._quotes: dict[str, pricing.Quote] = {}
        self.whatsapp_template: Template | None = None

    def meta(self, quote: pricing.Quote, values: dict[str, str]) -> dict[str, Any]:
        """The message's metadata: its units, and for WhatsApp the approved template with this recipient's values."""
        meta: dict[str, Any] = {"units": quote.total_units}
        template = self.whatsapp_template
        if template is not None:
            params = [str(values.get(name, values.get(str(name).lower(), ""))) for name in (template.variables or [])]
            meta["whatsapp_template"] = {
                "name": template.whatsapp_template_id,
                "language": template.whatsapp_language,
                "params": params,
            }
        return meta

    def text(self, values: dict[str, str]) -> str:
        body = self.content if self.static else render_text(self.content, values).text.strip()
        return body + self.suffix

    def quote(self, text: str) -> pricing.Quote:
        cached = self._quotes.get(text)
        if cached is None:
            if len(self._quotes) > 5000:
                self._quotes.clear()
            cached = self._quotes[text] = pricing.quote_message(
                self.client,
                self.channel,
                text,
                1,
                append_reply_link=self.channel == "sms",
                base_url=self.base_url,
                code_length=self.code_length,
            )
        return cached


def estimate_run(
    client: Client, campaign: Campaign, content: str, *, retry_of: int | None = None
) -> tuple[int, Decimal]:
    """How many recipients launching ``campaign`` now would reach and what it would reserve: every recipient's
    text priced as the launch prices it (the same builder; the selection, or the failed recipients of run
    ``retry_of``, or of the pending retry), without writing anything."""
    builder = TextBuilder(client, campaign.channel, campaign.kind, content)
    retry_of = retry_of or campaign.retry_of_run
    if retry_of:
        stream = retry_candidates(client.id, campaign.id, retry_of, values=not builder.static)
    else:
        stream = candidates(client.id, campaign.recipients, values=not builder.static)
    count, total = 0, Decimal("0")
    for chunk in resolve(client.id, campaign.channel, stream, Tally(), seen=set()):
        for recipient in chunk:
            total += builder.quote(builder.text(recipient.values)).cost
        count += len(chunk)
    return count, total


def insert_chunk(
    client: Client,
    campaign: Campaign,
    run: int,
    route: channels.Route,
    sender: str | None,
    chunk: list[Recipient],
    builder: TextBuilder,
    now: datetime,
) -> tuple[list[int], Decimal]:
    """Insert one chunk's pending messages (and, for SMS, their reply links); a recipient already in this run
    (a duplicate from another chunk) is skipped by the database. Returns the new ids in order and their cost."""
    sms = campaign.channel == "sms"
    codes = _free_codes(len(chunk), builder.code_length) if sms else [None] * len(chunk)
    shared = {
        "client_id": client.id,
        "template_id": campaign.template_id,
        "campaign_id": campaign.id,
        "campaign_run": run,
        "channel": campaign.channel,
        "direction": "outbound",
        "sender": sender,
        "channel_id": route.channel_id,
        "subject": f"Message from {client.company_name or client.name}" if campaign.channel == "email" else None,
        "status": "pending",
        "attempts": 0,
        "is_read": False,
        "created_at": now,
        "updated_at": now,
    }
    own: dict[str, list[Any]] = {"recipient": [], "body": [], "segments": [], "cost": [], "metadata": []}
    costs: dict[str, tuple[Decimal, str | None]] = {}
    for recipient, code in zip(chunk, codes, strict=True):
        text = builder.text(recipient.values)
        quote = builder.quote(text)
        costs[recipient.address] = (quote.cost, code)
        own["recipient"].append(recipient.address)
        own["body"].append(text + pricing.reply_link_suffix(builder.base_url, code) if sms else text)
        own["segments"].append(quote.segments)
        own["cost"].append(quote.cost)
        own["metadata"].append(builder.meta(quote, recipient.values))  # the column behind Message.meta
    inserted = sorted(_insert_messages(shared, own))
    if sms and inserted:
        _insert_links(client.id, [(mid, costs[address][1]) for mid, address in inserted], now)
    return [mid for mid, _ in inserted], sum((costs[address][0] for _, address in inserted), Decimal("0"))


def _postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _insert_messages(shared: dict[str, Any], own: dict[str, list[Any]]) -> list[tuple[int, str]]:
    table = Message.__table__
    return _insert_many(table, shared, own, _DEDUPE, [table.c.id, table.c.recipient])


def _insert_links(client_id: int, pairs: list[tuple[int, str]], now: datetime) -> None:
    base = public_base_url()
    table = ShortLink.__table__
    shared = {
        "client_id": client_id,
        "clicks": 0,
        "expires_at": now + shortlinks.link_ttl(),
        "created_at": now,
        "updated_at": now,
    }
    own: dict[str, list[Any]] = {
        "message_id": [message_id for message_id, _ in pairs],
        "code": [code for _, code in pairs],
        "original_url": [shortlinks.short_url(code, base) for _, code in pairs],
    }
    done = {message_id for (message_id,) in _insert_many(table, shared, own, ["code"], [table.c.message_id])}
    for message_id, code in pairs:
        if message_id in done:
            continue
        # Another sender took this code between our check and our insert: a new link of the same length.
        link = shortlinks.create_short_link(client_id, message_id, base_url=base, length=len(code))
        body = db.session.scalar(sa.select(Message.body).where(Message.id == message_id))
        text = body[: -len(pricing.reply_link_suffix(base, code))]
        db.session.execute(
            sa.update(Message)
            .where(Message.id == message_id)
            .values(body=text + pricing.reply_link_suffix(base, link.code))
            .execution_options(synchronize_session=False)
        )


def _insert_many(
    table: sa.Table,
    shared: dict[str, Any],
    own: dict[str, list[Any]],
    conflict: list[str],
    returning: list[sa.Column[Any]],
) -> list[tuple[Any, ...]]:
    """INSERT ... ON CONFLICT (``conflict``) DO NOTHING RETURNING ``returning`` for the rows made of the
    ``shared`` values and the per-row columns ``own`` (column name -> one value per row)."""
    if not _postgresql():
        rows = [{**shared, **dict(zip(own, values, strict=True))} for values in zip(*own.values(), strict=True)]
        statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=conflict).returning(*returning)
        return [tuple(row) for row in db.session.execute(statement, rows)]
    arrays, selected = [], []
    for name, values in own.items():
        column_type, column = table.c[name].type, None
        if isinstance(column_type, Money):  # the integer the column stores
            values, column_type = [money_to_storage(value) for value in values], sa.BigInteger()
        elif isinstance(column_type, sa.JSON):  # sent as text, cast back by the server
            values, column_type = [json.dumps(value) for value in values], sa.Text()
            column = postgresql.JSONB
        arrays.append(sa.bindparam(f"many_{name}", values, type_=postgresql.ARRAY(column_type)))
        selected.append((name, column))
    rows = sa.func.unnest(*arrays).table_valued(*own).render_derived()
    select = sa.select(
        *(sa.bindparam(f"one_{name}", value, type_=table.c[name].type) for name, value in shared.items()),
        *(rows.c[name] if cast is None else sa.cast(rows.c[name], cast) for name, cast in selected),
    )
    statement = (
        postgresql.insert(table)
        .from_select([*shared, *own], select)
        .on_conflict_do_nothing(index_elements=conflict)
        .returning(*returning)
    )
    return [tuple(row) for row in db.session.execute(statement)]


def _free_codes(count: int, size: int) -> list[str]:
    """``size``-character codes no existing short link uses (checked in the database; a race is handled at
    insert)."""
    codes = _random_codes(count, size)
    for _ in range(shortlinks.MAX_ATTEMPTS):
        taken = _taken_codes(codes)
        if not taken:
            return codes
        replacements = iter(c for c in _random_codes(len(taken) * 2, size) if c not in codes)
        codes = [next(replacements) if code in taken else code for code in codes]
    raise shortlinks.CodeSpaceExhausted("no free short-link codes for this campaign chunk")


def _random_codes(count: int, size: int) -> list[str]:
    """``count`` distinct random base62 codes of ``size`` characters (rejection sampling over os.urandom: no
    modulo bias)."""
    codes: set[str] = set()
    while len(codes) < count:
        raw = [b for b in os.urandom((count - len(codes)) * size * 2) if b < 248]
        for i in range(0, len(raw) - size + 1, size):
            codes.add(bytes(_ALPHABET[b % 62] for b in raw[i : i + size]).decode())
            if len(codes) == count:
                break
    return list(codes)


def _taken_codes(codes: Sequence[str]) -> set[str]:
    if _postgresql():
        among = sa.bindparam("codes", list(codes), type_=postgresql.ARRAY(sa.String))
        return set(db.session.scalars(sa.select(ShortLink.code).where(ShortLink.code == sa.any_(among))))
    taken: set[str] = set()
    for start in range(0, len(codes), 900):  # SQLite's bound-parameter limit
        taken |= set(
            db.session.scalars(sa.select(ShortLink.code).where(ShortLink.code.in_(codes[start : start + 900])))
        )
    return taken
