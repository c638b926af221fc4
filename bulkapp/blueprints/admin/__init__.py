"""Platform administration (role admin): every tenant."""

# Importing the route modules registers their views on bp.
from bulkapp.blueprints.admin import audit, routes, unmatched  # noqa: F401
from bulkapp.blueprints.admin.blueprint import bp

__all__ = ["bp"]
