"""Settings > Your profile: details, picture and password."""

from flask import abort, flash, redirect, render_template, send_file, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from bulkapp.blueprints.audit_trail import audit
from bulkapp.blueprints.settings.blueprint import bp
from bulkapp.blueprints.settings.profile_forms import AvatarForm, PasswordForm, ProfileForm
from bulkapp.blueprints.settings.sessions import current_token, session_list
from bulkapp.extensions import db
from bulkapp.models import User
from bulkapp.services.accounts import profiles
from bulkapp.services.accounts.users import AccountError
from bulkapp.services.notifications.email import mail_configured
from bulkapp.tenancy import current_client_id, tenant_required


def _profile_form() -> ProfileForm:
    """Bound to the posted form on POST, filled from the user otherwise."""
    form = ProfileForm(obj=current_user)
    form.timezone.choices = [SelectChoice(zone) for zone in profiles.timezones()]
    if not form.is_submitted():
        form.email_notifications.data = (current_user.preferences or {}).get("email_notifications", [])
    return form


def _page(status: int = 200, **forms):
    context = {
        "form": forms.get("form") or _profile_form(),
        "password_form": forms.get("password_form") or PasswordForm(),
        "avatar_form": forms.get("avatar_form") or AvatarForm(),
        "mail_configured": mail_configured(),
        **session_list(),
    }
    return render_template("settings/profile.html", **context), status


@bp.get("/profile")
@tenant_required
def profile():
    return _page()


def _submit(form, slot: str, action, saved: str):
    """Validate ``form``, run ``action`` (a profiles service call), commit and come back with ``saved``;
    on a validation or domain error re-render the page with 422 and the form's errors in place."""
    if form.validate_on_submit():
        try:
            action(form)
        except AccountError as exc:
            getattr(form, exc.field or "csrf_token").errors.append(str(exc))
        else:
            db.session.commit()
            flash(str(saved), "success")  # lazy: in the language the user may just have chosen
            return redirect(url_for("settings.profile"))
    return _page(422, **{slot: form})


@bp.post("/profile")
@tenant_required
def update_profile():
    return _submit(
        _profile_form(),
        "form",
        lambda form: profiles.update_profile(
            current_user,
            name=form.name.data,
            phone=form.phone.data,
            bio=form.bio.data,
            timezone=form.timezone.data,
            language=form.language.data,
            email_notifications=form.email_notifications.data,
        ),  # fmt: skip
        _l("Your profile is saved."),
    )


@bp.post("/profile/password")
@tenant_required
def change_password():
    def change(form):
        profiles.change_password(
            current_user, form.current_password.data, form.new_password.data, keep_token=current_token()
        )
        audit("password.changed", target=("users", current_user.id))

    return _submit(PasswordForm(), "password_form", change, _l("Your password is changed."))


@bp.post("/profile/avatar")
@tenant_required
def upload_avatar():
    return _submit(
        AvatarForm(),
        "avatar_form",
        lambda form: profiles.save_avatar(current_user, form.avatar.data.read(profiles.AVATAR_MAX_BYTES + 1)),
        _l("Your picture is saved."),
    )


@bp.get("/avatars/<int:user_id>")
@tenant_required
def avatar(user_id: int):
    user = db.session.get(User, user_id)
    if user is None or user.client_id != current_client_id():
        abort(404)
    path = profiles.avatar_path(user)
    if path is None:
        abort(404)
    return send_file(path, mimetype="image/png", max_age=3600)
