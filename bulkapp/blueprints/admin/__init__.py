"""Platform administration (role admin): every tenant."""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from bulkapp.blueprints.admin import routes, unmatched  # noqa: E402,F401
