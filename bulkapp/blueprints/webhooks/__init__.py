"""Machine endpoints for providers and payments: no login, no CSRF; each vendor module authenticates its calls."""

from flask import Blueprint
from werkzeug.exceptions import HTTPException

from bulkapp.blueprints.webhooks.common import WebhookRejected, http_error, rejection

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
bp.register_error_handler(WebhookRejected, rejection)
bp.register_error_handler(HTTPException, http_error)  # errors answer in the vendor's format, never HTML

from bulkapp.blueprints.webhooks import mpesa, vendors  # noqa: E402,F401
