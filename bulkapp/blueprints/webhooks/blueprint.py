"""The `webhooks` Blueprint object, apart from the package so route modules can import it without a circle."""

from flask import Blueprint
from werkzeug.exceptions import HTTPException

from bulkapp.blueprints.webhooks.common import WebhookRejected, http_error, rejection

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
bp.register_error_handler(WebhookRejected, rejection)
bp.register_error_handler(HTTPException, http_error)  # errors answer in the vendor's format, never HTML
