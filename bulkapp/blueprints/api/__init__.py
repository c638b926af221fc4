"""REST API v1 (JSON, authenticated by the tenant's API key): see /api/v1/docs."""

# Importing the route modules registers their views on bp.
from bulkapp.blueprints.api import auth, campaigns, contacts, docs, errors, messages  # noqa: F401
from bulkapp.blueprints.api.blueprint import bp

__all__ = ["bp"]
