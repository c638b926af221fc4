"""Settings: the tenant's account, channels, API key, webhooks and profile (one routes module each)."""

# Importing the route modules registers their views on bp; each area adds its routes module here
# and a card to templates/settings/page.html.
from bulkapp.blueprints.settings import api, audit, channels, profile, routes, sessions, suppression, team, webhooks  # noqa: F401
from bulkapp.blueprints.settings.blueprint import bp

__all__ = ["bp"]
