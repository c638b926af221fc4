"""REST API v1 (JSON, authenticated by the tenant's API key): see /api/v1/docs."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from bulkapp.blueprints.api import auth, campaigns, contacts, docs, errors, messages  # noqa: E402,F401
