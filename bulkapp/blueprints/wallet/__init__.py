"""The tenant's wallet: balance, M-Pesa top-ups, low-balance alert and the transaction history."""

# Importing the route modules registers their views on bp.
from bulkapp.blueprints.wallet import routes  # noqa: F401
from bulkapp.blueprints.wallet.blueprint import bp

__all__ = ["bp"]
