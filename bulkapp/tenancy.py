"""The current tenant, client-scoped queries, and 404 for anything that belongs to another tenant."""

from __future__ import annotations

from functools import wraps
from typing import TypeVar

import sqlalchemy as sa
from flask import abort, redirect, url_for
from flask_login import current_user, login_required

from bulkapp.extensions import db

M = TypeVar("M")


def current_client_id() -> int:
    """The signed-in user's tenant id; 404 when there is none (a platform admin has no tenant)."""
    client_id = getattr(current_user, "client_id", None)
    if client_id is None:
        abort(404)
    return client_id


def scoped(model: type[M]) -> sa.Select:
    """``SELECT model WHERE client_id = <current tenant>``: the start of every tenant-owned read."""
    return sa.select(model).where(model.client_id == current_client_id())


def get_owned_or_404(model: type[M], object_id: int) -> M:
    """Fetch one tenant-owned row by id; another tenant's id answers 404, exactly like a missing one."""
    obj = db.session.scalar(scoped(model).where(model.id == object_id))
    if obj is None:
        abort(404)
    return obj


def tenant_required(view):
    """Signed in as a tenant user. Platform admins without a tenant go to the admin area."""

    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if current_user.client_id is None:
            return redirect(url_for("admin.index"))
        return view(*args, **kwargs)

    return wrapper


def admin_required(view):
    """Signed in as a platform admin; anyone else gets 404 (the area does not exist for them)."""

    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if not current_user.is_admin:
            abort(404)
        return view(*args, **kwargs)

    return wrapper
