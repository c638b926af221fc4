"""Campaigns: compose with a live quote, schedule or send, watch progress, retry the failed recipients."""

# Importing the route modules registers their views on bp.
from bulkapp.blueprints.campaigns import page, routes  # noqa: F401
from bulkapp.blueprints.campaigns.blueprint import bp

__all__ = ["bp"]
