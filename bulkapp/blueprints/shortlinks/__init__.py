"""Short reply links: the public page /x/<code> where a recipient answers an SMS from a browser."""

# Importing the route modules registers their views on bp.
from bulkapp.blueprints.shortlinks import routes  # noqa: F401
from bulkapp.blueprints.shortlinks.blueprint import bp

__all__ = ["bp"]
