"""Settings > Your profile > Where you are signed in: the user's live sessions, each with "Sign out", and
"Sign out everywhere else" (services/accounts/sessions.py)."""

from flask import abort, flash, redirect, session, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, logout_user

from bulkapp.blueprints.settings.blueprint import bp
from bulkapp.extensions import db
from bulkapp.services.accounts import sessions
from bulkapp.tenancy import tenant_required


def current_token() -> str | None:
    return session.get(sessions.TOKEN_KEY)


def session_list() -> dict:
    """The profile page's context for templates/settings/partials/sessions.html."""
    return {"user_sessions": sessions.active_sessions(current_user.id, current_token())}


def _signed_out():
    """This browser's own session was ended: sign out here too."""
    logout_user()
    session.pop(sessions.TOKEN_KEY, None)
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.post("/profile/sessions/<int:session_id>/end")
@tenant_required
def end_session(session_id: int):
    """Another user's session id answers 404, as if it did not exist."""
    record = sessions.end_session_by_id(current_user.id, session_id)
    if record is None:
        abort(404)
    db.session.commit()
    if sessions.is_token_of(record, current_token()):
        return _signed_out()
    flash(_("That session is signed out."), "success")
    return redirect(url_for("settings.profile") + "#profile-sessions")


@bp.post("/profile/sessions/end-others")
@tenant_required
def end_other_sessions():
    count = sessions.end_all_sessions(current_user.id, except_token=current_token())
    db.session.commit()
    flash(ngettext("%(num)s other session is signed out.", "%(num)s other sessions are signed out.", count), "success")
    return redirect(url_for("settings.profile") + "#profile-sessions")


@bp.post("/profile/sessions/end-all")
@tenant_required
def end_all_sessions():
    sessions.end_all_sessions(current_user.id)
    db.session.commit()
    return _signed_out()
