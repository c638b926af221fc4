"""The `shortlinks` Blueprint object, apart from the package so route modules can import it without a circle."""

import atexit

from flask import Blueprint
from flask.sansio.blueprints import BlueprintSetupState

bp = Blueprint("shortlinks", __name__, url_prefix="/x")


@bp.record_once
def _click_buffer(state: BlueprintSetupState) -> None:
    """Views count clicks in a buffer; without Redis it lives in this process, which writes it out on exit."""
    from bulkapp.jobs.shortlinks import flush_link_clicks_at_exit
    from bulkapp.services.messaging import link_clicks

    link_clicks.init_app(state.app)
    if not state.app.config.get("REDIS_URL"):
        atexit.register(flush_link_clicks_at_exit, state.app)
