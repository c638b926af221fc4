"""Settings: the tenant's account, channels, API key, webhooks and profile (one routes module each)."""

from flask import Blueprint

bp = Blueprint("settings", __name__, url_prefix="/settings")

# Each area adds its routes module here and a card to templates/settings/page.html.
from bulkapp.blueprints.settings import api, channels, profile, routes, suppression, team, webhooks  # noqa: E402,F401
