"""Message templates per channel, with {{variables}} and a live preview."""

from flask import Blueprint

bp = Blueprint("templates", __name__, url_prefix="/templates")

from bulkapp.blueprints.templates import routes  # noqa: E402,F401
