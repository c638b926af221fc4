"""The `dashboard` Blueprint object, apart from the package so route modules can import it without a circle."""

from flask import Blueprint

bp = Blueprint("dashboard", __name__)
