"""The `settings` Blueprint object, apart from the package so route modules can import it without a circle."""

from flask import Blueprint

bp = Blueprint("settings", __name__, url_prefix="/settings")
