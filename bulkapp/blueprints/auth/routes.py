"""Auth views: parse the form, call the accounts service, commit, render."""

from urllib.parse import urlsplit

from flask import (
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_user, logout_user

from bulkapp.blueprints.audit_trail import audit
from bulkapp.blueprints.auth import second_step, throttle
from bulkapp.blueprints.auth.blueprint import bp
from bulkapp.blueprints.auth.forms import ConfirmEmailForm, LoginForm, ResendForm, SignupForm
from bulkapp.extensions import db, limiter, rq
from bulkapp.i18n import SESSION_KEY as LANGUAGE_SESSION_KEY
from bulkapp.i18n import current_language
from bulkapp.jobs.accounts import send_account_email, send_welcome
from bulkapp.services.accounts import audit as audit_log
from bulkapp.services.accounts.users import (
    AccountError,
    EmailNotConfirmed,
    authenticate,
    confirm_email,
    normalise_email,
    pending_user,
    read_confirmation,
    sign_up,
)

SIGNUP_SENT = "auth/signup_sent.html"


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _signup_limit() -> str:
    return current_app.config["SIGNUP_RATE_LIMIT"]


def _resend_email_key() -> str:
    return "resend:" + throttle.account_key(request.form.get("email") or "")


def _answered(response) -> bool:
    """Only submissions that were answered (not re-shown with errors) count against the sign-up limits."""
    return response.status_code == 200


def _email(kind: str, user_id: int, client_id: int | None = None) -> None:
    rq.enqueue(send_account_email, kind, user_id, current_language(), client_id, queue="high")


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
    from bulkapp.services.accounts import sessions

    session.clear()  # no session fixation: a fresh session at every sign-in
    login_user(user)
    session.permanent = True
    audit("auth.sign_in", actor=user)
    # the server-side record is what keeps this browser signed in (and what logout ends)
    session[sessions.TOKEN_KEY] = sessions.start_session(user, request.remote_addr, request.user_agent.string)
    db.session.commit()


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(_signup_limit, methods=["POST"], deduct_when=_answered)
def signup():
    """The same answer for a new and a taken address: the mailbox's owner learns which it was, by email."""
    if current_user.is_authenticated:
        return redirect(_home_for(current_user))
    form = SignupForm()
    if form.validate_on_submit():
        try:
            user, created = sign_up(
                form.business_name.data, form.name.data, form.email.data, form.password.data, form.phone.data
            )
        except AccountError as exc:
            getattr(form, exc.field or "email").errors.append(str(exc))
        else:
            db.session.commit()
            _email("confirm" if created else "exists", user.id)
            return render_template(SIGNUP_SENT, email=normalise_email(form.email.data), resend=ResendForm())
    status = 422 if form.errors else 200
    return render_template("auth/signup.html", form=form), status


@bp.post("/signup/resend")
@limiter.limit(_signup_limit, deduct_when=_answered)
@limiter.limit(lambda: current_app.config["RESEND_RATE_LIMIT"], key_func=_resend_email_key, deduct_when=_answered)
def resend_confirmation():
    """A new confirmation link for an account still waiting for one (the same answer for any address)."""
    form = ResendForm()
    if not form.validate_on_submit():
        return redirect(url_for("auth.login"))
    user = pending_user(form.email.data)
    if user is not None:
        _email("confirm", user.id)
    return render_template(SIGNUP_SENT, email=normalise_email(form.email.data), resend=None)


def _already_confirmed():
    flash(_("Your email address is already confirmed. Sign in."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/signup/confirm/<token>", methods=["GET", "POST"], endpoint="confirm_email")
@limiter.limit(_login_limit, methods=["POST"])
def confirm_email_link(token: str):
    """The emailed link shows a form; the password chosen at sign-up confirms the address and, the first time,
    signs the owner in. Opening the link alone (a mail scanner, or someone who got the email for a sign-up that
    was not theirs) changes nothing."""
    try:
        user = read_confirmation(token)
    except AccountError as exc:
        return render_template("auth/confirm_error.html", error=str(exc)), 404
    if user.email_verified_at is not None:
        return _already_confirmed()
    form, email = ConfirmEmailForm(), user.email
    if form.validate_on_submit():
        # wrong passwords count with the account's failed sign-ins: one budget for a guesser (see ``throttle``)
        address = get_remote_address()
        if wait := throttle.wait_seconds(email, address):
            message = _("Too many failed sign-ins for this account. Try again in %(seconds)s seconds.", seconds=wait)
            form.password.errors.append(message)
            response = make_response(render_template("auth/confirm.html", form=form, email=email), 429)
            response.headers["Retry-After"] = str(wait)
            return response
        try:
            user, newly = confirm_email(token, form.password.data)
        except AccountError as exc:
            db.session.rollback()
            if exc.field != "password":
                return render_template("auth/confirm_error.html", error=str(exc)), 404
            throttle.record_failure(email, address)
            form.password.errors.append(str(exc))
        else:
            db.session.commit()
            if not newly or not user.is_active:
                return _already_confirmed()
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
    return render_template("auth/confirm.html", form=form, email=email), 422 if form.errors else 200


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login():
    """Per address and per (account, address) throttling: see ``throttle``."""
    if current_user.is_authenticated:
        return redirect(_home_for(current_user))
    form = LoginForm()
    error, unconfirmed = None, None
    if form.validate_on_submit():
        address = get_remote_address()
        if wait := throttle.wait_seconds(form.email.data, address):
            message = _("Too many failed sign-ins for this account. Try again in %(seconds)s seconds.", seconds=wait)
            response = make_response(render_template("auth/login.html", form=form, error=message), 429)
            response.headers["Retry-After"] = str(wait)
            return response
        try:
            user = authenticate(form.email.data, form.password.data)
        except EmailNotConfirmed as exc:
            user, unconfirmed = None, ResendForm(formdata=None, email=exc.user.email)
            error = str(exc)
        else:
            if user is not None:
                db.session.commit()
                if held := second_step.hold(user, request.args.get("next")):  # 2FA on: a code comes first
                    return held
                _start_session(user)
                return redirect(_safe_next(request.args.get("next")) or _home_for(user))
            throttle.record_failure(form.email.data, address)
            audit_log.failed_sign_in(form.email.data, address)  # no transaction of its own to join
            db.session.commit()
            error = _("Wrong email or password.")
    status = 422 if (form.errors or error) else 200
    return render_template("auth/login.html", form=form, error=error, resend=unconfirmed), status


@bp.post("/logout")
def logout():
    from bulkapp.services.accounts import sessions

    language = current_language()  # the sign-in page stays in the language the user was reading
    if current_user.is_authenticated:
        audit("auth.sign_out")
    sessions.end_session(session.get(sessions.TOKEN_KEY))
    db.session.commit()
    logout_user()
    session.clear()
    session[LANGUAGE_SESSION_KEY] = language
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))


def _invite_error(error: AccountError):
    """A used invitation is a conflict (409); a forged or expired one is not found (404)."""
    from bulkapp.services.accounts.team import InvitationUsed

    status = 409 if isinstance(error, InvitationUsed) else 404
    return render_template("auth/invite.html", error=str(error), form=None, invite=None), status


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept_invite(token: str):
    """A teammate's invitation: choose a name and password, then sign in to the tenant. It works once: of
    concurrent acceptances one joins, the others get the "already used" page."""
    from bulkapp.blueprints.settings.team_forms import AcceptInviteForm
    from bulkapp.services.accounts.team import InvitationUsed, read_invite
    from bulkapp.services.accounts.team import accept_invite as accept

    try:
        invite = read_invite(token)
    except AccountError as exc:
        return _invite_error(exc)
    form = AcceptInviteForm(data={"name": invite["name"]} if request.method == "GET" else None)
    if form.validate_on_submit():
        try:
            user = accept(token, name=form.name.data, password=form.password.data)
        except InvitationUsed as exc:
            db.session.rollback()
            return _invite_error(exc)
        except AccountError as exc:
            form.password.errors.append(str(exc))
        else:
            audit("invitation.accepted", actor=user, target=user, details={"email": user.email})
            db.session.commit()
            _start_session(user)
            flash(_("Welcome, %(name)s. You have joined %(team)s.", name=user.name, team=user.client.name), "success")
            return redirect(url_for("dashboard.index"))
    return render_template("auth/invite.html", form=form, invite=invite, error=None), 422 if form.errors else 200
