"""The tenant's home page."""

from flask import Blueprint

bp = Blueprint("dashboard", __name__)

from bulkapp.blueprints.dashboard import routes  # noqa: E402,F401
