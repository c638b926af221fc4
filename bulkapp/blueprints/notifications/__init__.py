"""The notification bell and the notifications page."""

# Importing the route modules registers their views on bp.
from bulkapp.blueprints.notifications import routes  # noqa: F401
from bulkapp.blueprints.notifications.blueprint import bp

__all__ = ["bp"]
