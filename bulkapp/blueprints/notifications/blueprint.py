"""The `notifications` Blueprint object, apart from the package so route modules can import it without a circle."""

from flask import Blueprint

bp = Blueprint("notifications", __name__, url_prefix="/notifications")
