"""Two-factor pages: the sign-in's code step, and the user's own set-up (enable, recovery codes, disable, the
owner's team switch). Users who must use two-factor but have not set it up reach nothing but the set-up."""

from flask import current_app, flash, make_response, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import InputRequired, Length, Optional

from bulkapp import htmx
from bulkapp.blueprints.audit_trail import audit
from bulkapp.blueprints.auth import second_step
from bulkapp.blueprints.auth.blueprint import bp
from bulkapp.blueprints.auth.routes import _home_for, _login_limit, _safe_next, _start_session
from bulkapp.extensions import db, limiter
from bulkapp.models import User
from bulkapp.services.accounts import two_factor as tf
from bulkapp.services.accounts.users import AccountError
from bulkapp.web import for_outsiders

PAGE = "auth/two_factor.html"
CODE_ATTRS = {"autocomplete": "one-time-code", "autocapitalize": "off", "spellcheck": "false"}
# What a user who must set up two-factor may still open.
OPEN_DURING_ENROLMENT = frozenset(
    {"auth.two_factor", "auth.two_factor_enable", "auth.logout", "auth.login", "auth.login_code", "static"}
)


class CodeForm(FlaskForm):
    code = StringField(
        _l("Code from your authenticator app, or a recovery code"),
        validators=[InputRequired(), Length(max=32)],
        render_kw=CODE_ATTRS,
    )


class EnableForm(FlaskForm):
    code = StringField(
        _l("The 6-digit code your app shows"), validators=[InputRequired(), Length(max=32)], render_kw=CODE_ATTRS
    )


class CodeOrPasswordForm(FlaskForm):
    code = StringField(_l("A current code"), validators=[Optional(), Length(max=32)], render_kw=CODE_ATTRS)
    password = PasswordField(
        _l("or your password"), validators=[Optional(), Length(max=128)], render_kw={"autocomplete": "current-password"}
    )


class TeamForm(FlaskForm):
    require = BooleanField(_l("Everyone in the team must sign in with two-factor"))


def _production() -> bool:
    return current_app.config.get("ENV_NAME") == "production"


@bp.before_app_request
def _enrolment_gate():
    """Signed in but required to use two-factor without having set it up: only the set-up page opens."""
    if request.endpoint in OPEN_DURING_ENROLMENT or for_outsiders():
        return None
    if not current_user.is_authenticated or not tf.must_enrol(current_user, _production()):
        return None
    return htmx.redirect(url_for("auth.two_factor"))  # an HTMX request gets HX-Redirect, never a 302


def _too_many(user_id: int, template: str, status_ok_context: dict):
    wait = second_step.wait_seconds(user_id)
    if not wait:
        return None
    message = _("Too many wrong codes. Try again in %(seconds)s seconds.", seconds=wait)
    response = make_response(render_template(template, error=message, **status_ok_context), 429)
    response.headers["Retry-After"] = str(wait)
    return response


@bp.route("/login/code", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login_code():
    """The second step: a TOTP or recovery code for the account whose password was just given."""
    marker = second_step.pending()
    user = db.session.get(User, marker["user_id"]) if marker else None
    if user is None or not user.is_active or not tf.enabled(user):
        session.pop(second_step.PENDING_KEY, None)
        flash(_("Sign in again: the sign-in took too long."), "info")
        return redirect(url_for("auth.login"))
    form, error = CodeForm(), None
    if form.validate_on_submit():
        if throttled := _too_many(user.id, "auth/two_factor_login.html", {"form": form}):
            return throttled
        try:
            kind = tf.verify(user, form.code.data)
        except AccountError as exc:
            db.session.rollback()
            second_step.record_failure(user.id)
            audit("auth.two_factor_failed", actor=user, target=("users", user.id))
            db.session.commit()
            error = str(exc)
        else:
            db.session.commit()
            target = _safe_next(marker.get("next"))
            _start_session(user)
            if kind == "recovery":
                left = tf.remaining_recovery_codes(user)
                flash(_("You used a recovery code. %(left)s are left.", left=left), "warning")
            return redirect(target or _home_for(user))
    status = 422 if (form.errors or error) else 200
    return render_template("auth/two_factor_login.html", form=form, error=error), status


def _page(status: int = 200, **context):
    user = current_user
    if not tf.enabled(user):
        tf.start_enrolment(user)
        db.session.commit()
        context.setdefault("qr", Markup(tf.qr_svg(user)))  # segno's own SVG: paths and our title only
        context.setdefault("secret", user.totp_secret)
    context.setdefault("enable_form", EnableForm())
    context.setdefault("regenerate_form", CodeOrPasswordForm(prefix="regenerate"))
    context.setdefault("disable_form", CodeOrPasswordForm(prefix="disable"))
    client = user.client
    if tf.is_owner(user):
        context.setdefault("team_form", TeamForm(formdata=None, require=client.require_two_factor))
    context.setdefault("error", None)
    return render_template(
        PAGE,
        enabled=tf.enabled(user),
        must_enrol=tf.must_enrol(user, _production()),
        remaining=tf.remaining_recovery_codes(user),
        team_required=bool(client and client.require_two_factor),
        **context,
    ), status


def _codes_page(codes: list[str]):
    response = make_response(render_template("auth/two_factor_codes.html", codes=codes))
    response.headers["Cache-Control"] = "no-store"
    return response


def _end_other_sessions(user) -> None:
    """A two-factor change ends the user's other sessions (any cookie copied before it stops working)."""
    from bulkapp.services.accounts import sessions

    sessions.end_all_sessions(user.id, except_token=session.get(sessions.TOKEN_KEY))


@bp.get("/account/two-factor")
@login_required
def two_factor():
    return _page()


@bp.post("/account/two-factor/enable")
@login_required
@limiter.limit(_login_limit)
def two_factor_enable():
    form = EnableForm()
    if not form.validate_on_submit():
        return _page(422, enable_form=form)
    if throttled := _too_many(current_user.id, "auth/two_factor_login.html", {"form": CodeForm()}):
        return throttled
    try:
        codes = tf.confirm_enrolment(current_user, form.code.data)
    except AccountError as exc:
        db.session.rollback()
        second_step.record_failure(current_user.id)
        form.code.errors.append(str(exc))
        return _page(422, enable_form=form)
    _end_other_sessions(current_user)
    audit("two_factor.enabled", target=("users", current_user.id))
    db.session.commit()
    flash(_("Two-factor sign-in is on."), "success")
    return _codes_page(codes)


def _checked(form, slot: str):
    """Run the code-or-password check for ``form``; returns an error response, or None when it passed."""
    if not form.validate_on_submit():
        return _page(422, **{slot: form})
    if throttled := _too_many(current_user.id, "auth/two_factor_login.html", {"form": CodeForm()}):
        return throttled
    try:
        tf.verify_code_or_password(current_user, form.code.data, form.password.data)
    except AccountError as exc:
        db.session.rollback()
        second_step.record_failure(current_user.id)
        form.code.errors.append(str(exc))
        return _page(422, **{slot: form})
    return None


@bp.post("/account/two-factor/recovery-codes")
@login_required
@limiter.limit(_login_limit)
def two_factor_regenerate():
    form = CodeOrPasswordForm(prefix="regenerate")
    if not tf.enabled(current_user):
        return redirect(url_for("auth.two_factor"))
    if refused := _checked(form, "regenerate_form"):
        return refused
    codes = tf.new_recovery_codes(current_user)
    audit("two_factor.recovery_codes_renewed", target=("users", current_user.id))
    db.session.commit()
    return _codes_page(codes)


@bp.post("/account/two-factor/disable")
@login_required
@limiter.limit(_login_limit)
def two_factor_disable():
    form = CodeOrPasswordForm(prefix="disable")
    if not tf.enabled(current_user):
        return redirect(url_for("auth.two_factor"))
    if tf.required(current_user, _production()):
        return _page(409, error=_("Two-factor sign-in is required for your account: it cannot be turned off."))
    if refused := _checked(form, "disable_form"):
        return refused
    tf.disable(current_user)
    _end_other_sessions(current_user)
    audit("two_factor.disabled", target=("users", current_user.id))
    db.session.commit()
    flash(_("Two-factor sign-in is off."), "info")
    return redirect(url_for("auth.two_factor"))


@bp.post("/account/two-factor/team")
@login_required
def two_factor_team():
    form = TeamForm()
    if not tf.is_owner(current_user):
        return _page(403, error=_("Only the owner can change this."))
    if not form.validate_on_submit():
        return _page(422, team_form=form)
    try:
        before = current_user.client.require_two_factor
        tf.set_team_requirement(current_user, form.require.data)
    except AccountError as exc:
        db.session.rollback()
        return _page(422, team_form=form, error=str(exc))
    audit(
        "two_factor.team_requirement",
        target=current_user.client,
        details={"before": before, "after": bool(form.require.data)},
    )
    db.session.commit()
    if form.require.data:
        flash(_("Everyone in the team now signs in with two-factor."), "success")
    else:
        flash(_("Two-factor sign-in is now each teammate's choice."), "info")
    return redirect(url_for("auth.two_factor"))
