"""The `messages` Blueprint object, apart from the package so route modules can import it without a circle."""

from flask import Blueprint

bp = Blueprint("messages", __name__, url_prefix="/messages")
