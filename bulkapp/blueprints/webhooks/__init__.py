"""Machine endpoints for providers and payments: no login, no CSRF; each vendor module authenticates its calls."""

from flask import Blueprint

from bulkapp.blueprints.webhooks.common import WebhookRejected, rejection

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
bp.register_error_handler(WebhookRejected, rejection)

from bulkapp.blueprints.webhooks import mpesa, vendors  # noqa: E402,F401
