"""Messages: send one message with a live quote, and follow the recent ones to delivery."""

# Importing the route modules registers their views on bp.
from bulkapp.blueprints.messages import routes  # noqa: F401
from bulkapp.blueprints.messages.blueprint import bp

__all__ = ["bp"]
