"""Inbox: the shared two-way conversations of a tenant, with replies on each conversation's channel."""

from flask import Blueprint

bp = Blueprint("inbox", __name__, url_prefix="/inbox")

from bulkapp.blueprints.inbox import routes  # noqa: E402,F401
