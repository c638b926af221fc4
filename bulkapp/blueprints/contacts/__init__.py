"""The contact book: list, search, edit, contact pages, CSV export and CSV import."""

# Importing the route modules registers their views on bp.
from bulkapp.blueprints.contacts import imports, routes  # noqa: F401
from bulkapp.blueprints.contacts.blueprint import bp

__all__ = ["bp"]
