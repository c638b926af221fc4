"""The `contacts` Blueprint object, apart from the package so route modules can import it without a circle."""

from flask import Blueprint

bp = Blueprint("contacts", __name__, url_prefix="/contacts")
