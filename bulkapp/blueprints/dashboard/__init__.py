"""The tenant's home page."""

# Importing the route modules registers their views on bp.
from bulkapp.blueprints.dashboard import routes  # noqa: F401
from bulkapp.blueprints.dashboard.blueprint import bp

__all__ = ["bp"]
