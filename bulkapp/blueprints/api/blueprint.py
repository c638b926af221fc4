"""The `api` Blueprint object, apart from the package so route modules can import it without a circle."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")
