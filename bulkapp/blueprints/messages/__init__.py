"""Messages: send one message with a live quote, and follow the recent ones to delivery."""

from flask import Blueprint

bp = Blueprint("messages", __name__, url_prefix="/messages")

from bulkapp.blueprints.messages import routes  # noqa: E402,F401
