"""The contact book: list, search, edit, contact pages, CSV export and CSV import."""

from flask import Blueprint

bp = Blueprint("contacts", __name__, url_prefix="/contacts")

from bulkapp.blueprints.contacts import imports, routes  # noqa: E402,F401
