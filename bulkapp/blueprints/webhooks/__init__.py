"""Machine endpoints for providers and payments: no login, no CSRF; each vendor module authenticates its calls."""

# Importing the route modules registers their views on bp.
from bulkapp.blueprints.webhooks import mpesa, vendors  # noqa: F401
from bulkapp.blueprints.webhooks.blueprint import bp

__all__ = ["bp"]
