"""Forgotten password, the reset link, the email change link and the development outbox."""

from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, logout_user

from bulkapp.blueprints.audit_trail import audit
from bulkapp.blueprints.auth import throttle
from bulkapp.blueprints.auth.blueprint import bp
from bulkapp.blueprints.auth.password_forms import ConfirmChangeForm, EmailChangeForm, ForgotForm, ResetForm
from bulkapp.extensions import db, limiter, rq
from bulkapp.i18n import SESSION_KEY as LANGUAGE_SESSION_KEY
from bulkapp.i18n import current_language
from bulkapp.jobs.accounts import send_account_email, send_email_change
from bulkapp.services.accounts import email_change, outbox, password_reset
from bulkapp.services.accounts.users import AccountError

FORGOT_SENT = "auth/forgot_sent.html"


def _forgot_limit() -> str:
    return current_app.config["PASSWORD_RESET_RATE_LIMIT"]


def _forgot_email_limit() -> str:
    return current_app.config["PASSWORD_RESET_EMAIL_RATE_LIMIT"]


def _forgot_email_key() -> str:
    return "forgot:" + throttle.account_key(request.form.get("email") or "")


def _answered(response) -> bool:
    return response.status_code == 200


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(_forgot_limit, methods=["POST"], deduct_when=_answered)
@limiter.limit(_forgot_email_limit, methods=["POST"], key_func=_forgot_email_key, deduct_when=_answered)
def forgot_password():
    """The same answer for a known and an unknown address; only a known one gets an email."""
    form = ForgotForm()
    if form.validate_on_submit():
        user = password_reset.user_for_reset(form.email.data)
        if user is not None:
            rq.enqueue(send_account_email, "reset", user.id, current_language(), None, queue="high")
        return render_template(FORGOT_SENT, email=form.email.data)
    return render_template("auth/forgot.html", form=form), 422 if form.errors else 200


def _reset_error(error: AccountError):
    return render_template("auth/reset_error.html", error=str(error)), 404


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@limiter.limit(_forgot_limit, methods=["POST"], deduct_when=lambda response: response.status_code == 404)
def reset_password(token: str):
    """Choose a new password from an emailed link: once, within 60 minutes; every session of the user ends."""
    try:
        user = password_reset.read_reset(token)
    except AccountError as exc:
        return _reset_error(exc)
    form = ResetForm()
    if form.validate_on_submit():
        try:
            password_reset.reset_password(token, form.password.data, form.confirm.data)
        except AccountError as exc:
            db.session.rollback()
            if exc.field is None:
                return _reset_error(exc)
            getattr(form, exc.field).errors.append(str(exc))
        else:
            audit("password.reset", actor=user, target=("users", user.id))
            db.session.commit()
            language = current_language()
            logout_user()  # whoever was signed in here is signed out too, like everywhere else
            session.clear()
            session[LANGUAGE_SESSION_KEY] = language
            flash(_("Your password was changed and you were signed out everywhere. Sign in with it."), "success")
            return redirect(url_for("auth.login"))
    status = 422 if form.errors else 200
    return render_template("auth/reset.html", form=form, email=user.email), status


@bp.route("/account/email", methods=["GET", "POST"])
@login_required
@limiter.limit(_forgot_limit, methods=["POST"], deduct_when=_answered)
def change_email():
    """Ask for a new sign-in address: a link goes to it; the old address stays until the link is opened."""
    form = EmailChangeForm()
    if form.validate_on_submit():
        try:
            new_email = email_change.request_email_change(current_user, form.email.data, form.password.data)
        except AccountError as exc:
            getattr(form, exc.field or "email").errors.append(str(exc))
        else:
            if new_email is not None:
                rq.enqueue(send_email_change, current_user.id, new_email, current_language(), queue="high")
            return render_template("auth/email_change_sent.html", email=form.email.data.strip())
    status = 422 if form.errors else 200
    return render_template("auth/email_change.html", form=form), status


@bp.route("/account/email/confirm/<token>", methods=["GET", "POST"])
def confirm_email_change(token: str):
    """The link sent to the new address: a button confirms (opening the link alone changes nothing)."""
    form = ConfirmChangeForm()
    if form.validate_on_submit():
        try:
            user, old = email_change.confirm_email_change(token)
        except AccountError as exc:
            db.session.rollback()
            return render_template("auth/email_change_error.html", error=str(exc)), 404
        audit("email.changed", actor=user, target=("users", user.id), details={"before": old, "after": user.email})
        db.session.commit()
        flash(_("Your email address is now %(email)s.", email=user.email), "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/email_change_confirm.html", form=form)


@bp.get("/dev/outbox")
def dev_outbox():
    """Development only (``BULKAPP_ENV=development`` and no ``MAIL_HOST``): the mail the app would have sent."""
    if not outbox.outbox_enabled():
        abort(404)
    return render_template("dev/outbox.html", mails=outbox.recent())
