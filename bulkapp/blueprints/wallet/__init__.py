"""The tenant's wallet: balance, M-Pesa top-ups, low-balance alert and the transaction history."""

from flask import Blueprint

bp = Blueprint("wallet", __name__, url_prefix="/wallet")

from bulkapp.blueprints.wallet import routes  # noqa: E402,F401
