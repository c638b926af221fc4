"""The views' one-line entry into the audit log: who (the signed-in user), where from (the request's address)
and which tenant come from the request; the row joins the view's transaction (the view commits)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from flask import Response, request, stream_with_context
from flask_login import current_user

from bulkapp import htmx
from bulkapp.parsing import parse_date, parse_id
from bulkapp.services.accounts import audit as audit_log

_OWN_TENANT = object()


def audit(
    action: str,
    *,
    target: Any = None,
    details: dict[str, Any] | None = None,
    actor: Any = None,
    client_id: Any = _OWN_TENANT,
) -> None:
    """Record ``action`` by ``actor`` (default: the signed-in user) in ``client_id`` (default: the actor's tenant;
    ``None`` for a platform event)."""
    if actor is None and current_user.is_authenticated:
        actor = current_user._get_current_object()
    if client_id is _OWN_TENANT:
        client_id = getattr(actor, "client_id", None)
    audit_log.record(action, client_id=client_id, actor=actor, target=target, details=details, ip=request.remote_addr)


_ACTION = re.compile(r"[a-z0-9_.]{1,64}", re.ASCII)


def read_filters(*, platform: bool = False) -> tuple[audit_log.Filters, int | None, dict[str, str]]:
    """The log's filters from the query string, through :mod:`bulkapp.parsing`: a value that does not parse is
    ignored (never an error page). Returns the filters, the keyset ``before`` id and the values to show again."""
    args = request.args
    action = (args.get("action") or "").strip()
    action = action if _ACTION.fullmatch(action) else ""
    actor = "".join(ch for ch in (args.get("actor") or "") if ch.isprintable()).strip()[:100]
    since, until = parse_date(args.get("since")), parse_date(args.get("until"))
    client_id = parse_id(args.get("client")) if platform else None
    filters = audit_log.Filters(action=action, actor=actor, since=since, until=until, client_id=client_id)
    shown = {
        "action": action,
        "actor": actor,
        "since": since.isoformat() if since else "",
        "until": until.isoformat() if until else "",
        "client": str(client_id) if client_id else "",
    }
    return filters, parse_id(args.get("before")), shown


def csv_response(chunks, name: str) -> Response:
    """A streamed CSV download of the log (never cached)."""
    response = Response(stream_with_context(chunks), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}-{date.today().isoformat()}.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response


def render_log(page: str, client_id: int | None, *, area: str):
    """The log page (or its list fragment) of one tenant, or of the whole platform when ``client_id`` is None;
    ``area`` is the blueprint whose ``audit`` and ``audit_export`` endpoints serve it."""
    platform = client_id is None
    filters, before, shown = read_filters(platform=platform)
    rows, next_before = audit_log.page(client_id, filters, before=before)
    names = audit_log.tenant_names({row.client_id for row in rows if row.client_id}) if platform else None
    return htmx.render(
        page,
        "settings/partials/audit_list.html",
        rows=rows,
        next_before=next_before,
        before=before,
        shown=shown,
        actions=audit_log.actions(client_id),
        list_endpoint=f"{area}.audit",
        export_endpoint=f"{area}.audit_export",
        platform=platform,
        tenant_names=names,
    )


def export_log(client_id: int | None, name: str) -> Response:
    """The filtered log as a streamed CSV (of one tenant, or of the platform when ``client_id`` is None)."""
    filters, _before, _shown = read_filters(platform=client_id is None)
    return csv_response(audit_log.export_csv(client_id, filters), name)
