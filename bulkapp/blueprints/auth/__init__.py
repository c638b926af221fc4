"""Sign-up, sign-in and sign-out."""

# Importing the route modules registers their views on bp.
from bulkapp.blueprints.auth import password, routes, two_factor  # noqa: F401
from bulkapp.blueprints.auth.blueprint import bp

__all__ = ["bp"]
