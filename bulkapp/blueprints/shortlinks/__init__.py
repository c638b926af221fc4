"""Short reply links: the public page /x/<code> where a recipient answers an SMS from a browser."""

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


from bulkapp.blueprints.shortlinks import routes  # noqa: E402,F401
