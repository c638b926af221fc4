"""The `templates` Blueprint object, apart from the package so route modules can import it without a circle."""

from flask import Blueprint

bp = Blueprint("templates", __name__, url_prefix="/templates")
