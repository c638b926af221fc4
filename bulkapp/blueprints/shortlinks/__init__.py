"""Short reply links: the public page /x/<code> where a recipient answers an SMS from a browser."""

from flask import Blueprint

bp = Blueprint("shortlinks", __name__, url_prefix="/x")

from bulkapp.blueprints.shortlinks import routes  # noqa: E402,F401
