"""Inbox: the shared two-way conversations of a tenant, with replies on each conversation's channel."""

# Importing the route modules registers their views on bp.
from bulkapp.blueprints.inbox import routes  # noqa: F401
from bulkapp.blueprints.inbox.blueprint import bp

__all__ = ["bp"]
