"""Settings > Team: the tenant's users, and invitations for teammates."""

from flask import render_template, url_for

from bulkapp.blueprints.settings.blueprint import bp
from bulkapp.blueprints.settings.profile_forms import InviteForm
from bulkapp.extensions import rq
from bulkapp.i18n import current_language
from bulkapp.jobs.accounts import send_account_email
from bulkapp.public_url import public_url
from bulkapp.services.accounts import profiles
from bulkapp.services.accounts.users import AccountError
from bulkapp.tenancy import current_client_id, tenant_required


def _page(form: InviteForm, invite_link: str | None = None, status: int = 200):
    members = profiles.team(current_client_id())
    return render_template("settings/team.html", form=form, members=members, invite_link=invite_link), status


@bp.get("/team")
@tenant_required
def team():
    return _page(InviteForm())


@bp.post("/team/invite")
@tenant_required
def invite():
    form = InviteForm()
    if form.validate_on_submit():
        try:
            token, taken_by = profiles.invite_teammate(current_client_id(), email=form.email.data, name=form.name.data)
        except AccountError as exc:
            form.email.errors.append(str(exc))
        else:
            if taken_by is not None:  # the page answers as for any address; the account's owner is told by email
                rq.enqueue(
                    send_account_email,
                    "invited_existing",
                    taken_by,
                    current_language(),
                    current_client_id(),
                    queue="high",
                )
            link = public_url(url_for("auth.accept_invite", token=token))
            return _page(InviteForm(formdata=None), invite_link=link)
    return _page(form, status=422)
