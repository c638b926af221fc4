"""Message templates per channel, with {{variables}} and a live preview."""

# Importing the route modules registers their views on bp.
from bulkapp.blueprints.templates import routes  # noqa: F401
from bulkapp.blueprints.templates.blueprint import bp

__all__ = ["bp"]
