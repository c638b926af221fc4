"""Settings > API: the tenant's REST API key (create, rotate, revoke; shown once) and how to use it."""

from __future__ import annotations

from flask import current_app, render_template, request
from flask_wtf import FlaskForm
from werkzeug.exceptions import HTTPException
from wtforms import HiddenField

from bulkapp import htmx
from bulkapp.blueprints.audit_trail import audit
from bulkapp.blueprints.settings.blueprint import bp
from bulkapp.extensions import db
from bulkapp.models import Client
from bulkapp.public_url import public_base_url
from bulkapp.services.accounts.api_key_settings import (
    ApiKeyError,
    api_key_status,
    create_api_key,
    revoke_api_key,
    rotate_api_key,
)
from bulkapp.services.accounts.api_keys import key_prefix
from bulkapp.tenancy import current_client_id, tenant_required

PAGE = "settings/api.html"
KEY = "settings/partials/api_key.html"
DOCS_PATH = "/api/v1/docs"
EXAMPLE_PATH = "/api/v1/balance"


class ApiKeyForm(FlaskForm):
    """Rotate/revoke name the key the page showed, so a second tab or a double submit changes nothing."""

    prefix = HiddenField()


def _existing_path(path: str) -> str | None:
    """``path`` under this app when a GET route serves it (the API is built separately), else None."""
    try:
        current_app.url_map.bind("localhost").match(path, method="GET")
    except HTTPException:
        return None
    return request.script_root + path


def _context(**extra) -> dict:
    client_id = current_client_id()
    context = {
        "key_status": api_key_status(client_id),
        "test_mode": db.session.get(Client, client_id).is_test_mode,
        "docs_url": _existing_path(DOCS_PATH),
        "example_url": public_base_url() + EXAMPLE_PATH if _existing_path(EXAMPLE_PATH) else None,
        "new_key": None,
        "error": None,
    }
    context.update(extra)
    return context


def _respond(status: int = 200, **extra):
    response = htmx.render(PAGE, KEY, status=status, **_context(**extra))
    response.headers["Cache-Control"] = "no-store"  # a new key must not linger in any cache
    return response


@bp.get("/api")
@tenant_required
def api():
    return render_template(PAGE, **_context())


@bp.post("/api/create")
@tenant_required
def api_create():
    try:
        key = create_api_key(current_client_id())
    except ApiKeyError as exc:
        return _respond(409, error=exc.message)
    audit("api_key.created", details={"prefix": key_prefix(key)})
    db.session.commit()
    return _respond(new_key=key)


@bp.post("/api/rotate")
@tenant_required
def api_rotate():
    form = ApiKeyForm()
    try:
        key = rotate_api_key(current_client_id(), form.prefix.data or None)
    except ApiKeyError as exc:
        return _respond(409, error=exc.message)
    audit("api_key.rotated", details={"old_prefix": form.prefix.data or "", "prefix": key_prefix(key)})
    db.session.commit()
    return _respond(new_key=key)


@bp.post("/api/revoke")
@tenant_required
def api_revoke():
    form = ApiKeyForm()
    try:
        revoke_api_key(current_client_id(), form.prefix.data or None)
    except ApiKeyError as exc:
        return _respond(409, error=exc.message)
    audit("api_key.revoked", details={"old_prefix": form.prefix.data or ""})
    db.session.commit()
    return _respond(revoked=True)
