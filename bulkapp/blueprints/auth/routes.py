"""Auth views: parse the form, call the accounts service, commit, render."""

from urllib.parse import urlsplit

from flask import (
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from bulkapp.blueprints.auth import bp
from bulkapp.blueprints.auth.forms import LoginForm, SignupForm
from bulkapp.extensions import db, limiter, rq
from bulkapp.i18n import SESSION_KEY as LANGUAGE_SESSION_KEY
from bulkapp.i18n import current_language
from bulkapp.jobs.accounts import send_welcome
from bulkapp.services.accounts import AccountError, authenticate, sign_up


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _login_email_key() -> str:
    return "login:" + (request.form.get("email") or "").strip().lower()


def _home_for(user) -> str:
    return url_for("admin.index") if user.client_id is None else url_for("dashboard.index")


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/"):
        return None
    return target


def _start_session(user) -> None:
    session.clear()  # no session fixation: a fresh session at every sign-in
    login_user(user)
    session.permanent = True


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    if current_user.is_authenticated:
        return redirect(_home_for(current_user))
    form = SignupForm()
    if form.validate_on_submit():
        try:
            user = sign_up(
                form.business_name.data, form.name.data, form.email.data, form.password.data, form.phone.data
            )
        except AccountError as exc:
            getattr(form, exc.field or "email").errors.append(str(exc))
        else:
            db.session.commit()
            rq.enqueue(send_welcome, user.id, queue="low")
            _start_session(user)
            flash(
                _(
                    "Welcome to Bulkapp, %(name)s. Your account is in test mode on the sandbox provider.",
                    name=user.name,
                ),
                "success",
            )
            return redirect(url_for("dashboard.index"))
    status = 422 if form.errors else 200
    return render_template("auth/signup.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=_login_email_key)
def login():
    if current_user.is_authenticated:
        return redirect(_home_for(current_user))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        user = authenticate(form.email.data, form.password.data)
        if user is not None:
            db.session.commit()
            _start_session(user)
            return redirect(_safe_next(request.args.get("next")) or _home_for(user))
        error = _("Wrong email or password.")
    status = 422 if (form.errors or error) else 200
    return render_template("auth/login.html", form=form, error=error), status


@bp.post("/logout")
def logout():
    language = current_language()  # the sign-in page stays in the language the user was reading
    logout_user()
    session.clear()
    session[LANGUAGE_SESSION_KEY] = language
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept_invite(token: str):
    """A teammate's invitation: choose a name and password, then sign in to the tenant."""
    from bulkapp.blueprints.settings.profile_forms import AcceptInviteForm
    from bulkapp.services.profiles import accept_invite as accept
    from bulkapp.services.profiles import read_invite

    try:
        invite = read_invite(token)
    except AccountError as exc:
        return render_template("auth/invite.html", error=str(exc), form=None, invite=None), 404
    form = AcceptInviteForm(data={"name": invite["name"]} if request.method == "GET" else None)
    if form.validate_on_submit():
        try:
            user = accept(token, name=form.name.data, password=form.password.data)
        except AccountError as exc:
            form.password.errors.append(str(exc))
        else:
            db.session.commit()
            _start_session(user)
            flash(_("Welcome, %(name)s. You have joined %(team)s.", name=user.name, team=user.client.name), "success")
            return redirect(url_for("dashboard.index"))
    return render_template("auth/invite.html", form=form, invite=invite, error=None), 422 if form.errors else 200
