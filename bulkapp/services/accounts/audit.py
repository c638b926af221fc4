"""The audit log: who did what, when, from where. Append-only (database triggers refuse UPDATE and DELETE).

``record`` adds a row in the caller's transaction, so the row exists exactly when the change it describes
was committed. ``details`` holds before/after values where they matter and never a secret (no password,
token or API key: callers pass only the last characters of a key).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa

from bulkapp import spreadsheet
from bulkapp.extensions import db
from bulkapp.models import AuditEvent, Client, User
from bulkapp.services.accounts.users import normalise_email

PAGE_SIZE = 50
EXPORT_CHUNK = 1000
EXPORT_COLUMNS = ["time_utc", "tenant_id", "actor", "action", "target_type", "target_id", "ip", "details"]
SECRET_KEYS = ("password", "token", "secret", "api_key", "recovery")


def _clean(details: Any) -> Any:
    """Drop any key that names a secret, at any depth (a careless caller must not leak one into the log)."""
    if isinstance(details, dict):
        return {
            str(k): _clean(v) for k, v in details.items() if not any(word in str(k).lower() for word in SECRET_KEYS)
        }
    if isinstance(details, (list, tuple)):
        return [_clean(v) for v in details]
    if isinstance(details, (str, int, float, bool)) or details is None:
        return details
    return str(details)


def _target(target: Any) -> tuple[str | None, str | None]:
    if target is None:
        return None, None
    if isinstance(target, tuple):
        kind, ident = target
        return str(kind)[:40], None if ident is None else str(ident)[:64]
    return target.__tablename__[:40], str(target.id)


def record(
    action: str,
    *,
    client_id: int | None,
    actor: User | str | None,
    target: Any = None,
    details: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """Add one audit row to the session (the caller commits). ``actor`` is the user, a label such as
    ``"API key bk_live_…abcd"`` or ``None`` for the system; ``target`` a model row or ``(type, id)``."""
    if isinstance(actor, User):
        actor_id, label = actor.id, actor.email
    else:
        actor_id, label = None, actor or "system"
    target_type, target_id = _target(target)
    event = AuditEvent(
        client_id=client_id,
        actor_user_id=actor_id,
        actor_label=label[:255],
        action=action[:64],
        target_type=target_type,
        target_id=target_id,
        ip=(ip or None) and ip[:64],
        details=_clean(details or {}),
    )
    db.session.add(event)
    db.session.flush()
    return event


@dataclass(frozen=True)
class Filters:
    """What the reader asked for (already parsed): every field optional."""

    action: str = ""
    actor: str = ""
    since: date | None = None
    until: date | None = None
    client_id: int | None = None  # platform view only: one tenant


def _query(client_id: int | None, filters: Filters) -> sa.Select:
    query = sa.select(AuditEvent)
    if client_id is not None:
        query = query.where(AuditEvent.client_id == client_id)
    elif filters.client_id is not None:
        query = query.where(AuditEvent.client_id == filters.client_id)
    if filters.action:
        query = query.where(AuditEvent.action == filters.action)
    if filters.actor:
        escaped = filters.actor.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(sa.func.lower(AuditEvent.actor_label).like(f"%{escaped}%", escape="\\"))
    if filters.since:
        query = query.where(AuditEvent.created_at >= datetime.combine(filters.since, time.min, UTC))
    if filters.until:
        query = query.where(AuditEvent.created_at < datetime.combine(filters.until + timedelta(days=1), time.min, UTC))
    return query


def page(
    client_id: int | None, filters: Filters, *, before: int | None = None, size: int = PAGE_SIZE
) -> tuple[list[AuditEvent], int | None]:
    """Newest first, one keyset page: the rows and the id to pass as ``before`` for the next page (or None).
    ``client_id`` None reads every tenant (platform admins only)."""
    query = _query(client_id, filters)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    rows = list(db.session.scalars(query.order_by(AuditEvent.id.desc()).limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return rows, (rows[-1].id if more and rows else None)


def actions(client_id: int | None) -> list[str]:
    """The action codes present in the log (the filter's choices)."""
    query = sa.select(AuditEvent.action).distinct().order_by(AuditEvent.action)
    if client_id is not None:
        query = query.where(AuditEvent.client_id == client_id)
    return list(db.session.scalars(query))


def tenant_names(client_ids: set[int]) -> dict[int, str]:
    """The names of the tenants a platform page shows (a removed tenant has none: its id is shown)."""
    if not client_ids:
        return {}
    rows = db.session.execute(sa.select(Client.id, Client.name).where(Client.id.in_(client_ids)))
    return {row.id: row.name for row in rows}


def export_csv(client_id: int | None, filters: Filters) -> Iterator[str]:
    """The filtered log as CSV text chunks, newest first, read in keyset chunks; cells guarded against formulas."""
    buffer = io.StringIO()
    writer = spreadsheet.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    before = None
    while True:
        rows, before = page(client_id, filters, before=before, size=EXPORT_CHUNK)
        for row in rows:
            writer.writerow(
                [
                    row.created_at.astimezone(UTC).isoformat() if row.created_at else "",
                    row.client_id or "",
                    row.actor_label,
                    row.action,
                    row.target_type or "",
                    row.target_id or "",
                    row.ip or "",
                    json.dumps(row.details or {}, sort_keys=True, ensure_ascii=False),
                ]
            )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if before is None:
            return


def failed_sign_in(email: str, ip: str | None) -> AuditEvent:
    """A refused sign-in: the normalised address (never the password), in the tenant of the account it named,
    if any (so its owners see attempts on their team), else as a platform event."""
    address = normalise_email(email or "")[:255]
    user = db.session.scalar(sa.select(User).where(User.email == address)) if address else None
    return record(
        "auth.sign_in_failed",
        client_id=user.client_id if user else None,
        actor=address or "unknown",
        target=user,
        details={"email": address},
        ip=ip,
    )
