"""Settings > Team: members and their roles, invitations, ownership and closing the account.

Who may open each route is decided by the permission map (services/accounts/roles.py), before these views run.
"""

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, logout_user
from wtforms.fields.choices import SelectChoice

from bulkapp.blueprints.audit_trail import audit
from bulkapp.blueprints.settings.blueprint import bp
from bulkapp.blueprints.settings.team_forms import CloseAccountForm, InviteForm, RoleForm, TransferForm
from bulkapp.extensions import db, rq
from bulkapp.i18n import current_language
from bulkapp.jobs.accounts import send_account_email, send_invitation_email
from bulkapp.public_url import public_url
from bulkapp.services.accounts import team as team_service
from bulkapp.services.accounts.roles import ROLE_LABELS
from bulkapp.services.accounts.users import AccountError
from bulkapp.tenancy import current_client_id, tenant_required


def _with_new_owners(form: TransferForm, members) -> TransferForm:
    """The transfer form's choices: every other active member (the page's list and the POST's check alike)."""
    form.new_owner.choices = [SelectChoice(m.id, f"{m.name} <{m.email}>") for m in members if m.id != current_user.id]
    return form


def _page(form: InviteForm | None = None, invite_link: str | None = None, status: int = 200, **forms):
    client_id = current_client_id()
    members = team_service.members(client_id)
    transfer = _with_new_owners(forms.get("transfer") or TransferForm(), members)
    return render_template(
        "settings/team.html",
        form=form or InviteForm(),
        members=members,
        invitations=team_service.pending_invitations(client_id),
        invite_link=invite_link,
        role_form=RoleForm(formdata=None),
        transfer=transfer,
        close=forms.get("close") or CloseAccountForm(formdata=None),
        invite_url=lambda token: public_url(url_for("auth.accept_invite", token=token)),
    ), status


@bp.get("/team")
@tenant_required
def team():
    return _page()


@bp.post("/team/invite")
@tenant_required
def invite():
    form = InviteForm()
    if form.validate_on_submit():
        try:
            token, taken_by = team_service.invite_teammate(
                current_client_id(),
                email=form.email.data,
                name=form.name.data,
                role=form.role.data,
                inviter=current_user,
            )
        except AccountError as exc:
            getattr(form, exc.field or "email").errors.append(str(exc))
        else:
            invitation = team_service.invitation_for(token)
            audit(
                "invitation.sent",
                target=invitation,
                details={"email": invitation.email, "role": invitation.tenant_role},
            )
            db.session.commit()
            if taken_by is not None:  # the page answers as for any address; the account's owner is told by email
                rq.enqueue(
                    send_account_email,
                    "invited_existing",
                    taken_by,
                    current_language(),
                    current_client_id(),
                    queue="high",
                )
            else:
                rq.enqueue(send_invitation_email, invitation.id, current_language(), queue="high")
            link = public_url(url_for("auth.accept_invite", token=token))
            return _page(InviteForm(formdata=None), invite_link=link)
    return _page(form, status=422)


def _done(message: str):
    db.session.commit()
    flash(message, "success")
    return redirect(url_for("settings.team"))


def _refused(exc: AccountError):
    db.session.rollback()
    flash(str(exc), "error")
    return redirect(url_for("settings.team"))


@bp.post("/team/members/<int:user_id>/role")
@tenant_required
def team_role(user_id: int):
    form = RoleForm()
    try:
        before = team_service.member(current_client_id(), user_id).tenant_role  # another tenant's user: 404 first
    except LookupError:
        abort(404)
    if not form.validate_on_submit():
        return _refused(AccountError(_("Choose a role from the list.")))
    try:
        member = team_service.change_role(current_client_id(), user_id, form.role.data)
    except LookupError:
        abort(404)
    except AccountError as exc:
        return _refused(exc)
    audit("role.changed", target=member, details={"email": member.email, "before": before, "after": member.tenant_role})
    return _done(_("%(name)s is now %(role)s.", name=member.name, role=ROLE_LABELS[member.tenant_role]))


@bp.post("/team/members/<int:user_id>/remove")
@tenant_required
def team_remove(user_id: int):
    try:
        role = team_service.member(current_client_id(), user_id).tenant_role
        member = team_service.remove_member(current_client_id(), user_id, current_user)
    except LookupError:
        abort(404)
    except AccountError as exc:
        return _refused(exc)
    audit("member.removed", target=member, details={"email": member.email, "role": role})
    return _done(_("%(name)s was removed from the team and signed out.", name=member.name))


@bp.post("/team/invitations/<int:invitation_id>/resend")
@tenant_required
def invitation_resend(invitation_id: int):
    try:
        invitation = team_service.resend_invitation(current_client_id(), invitation_id)
    except LookupError:
        abort(404)
    audit("invitation.resent", target=("invitations", invitation_id), details={"email": invitation.email})
    db.session.commit()
    rq.enqueue(send_invitation_email, invitation.id, current_language(), queue="high")
    flash(_("The invitation was sent again to %(email)s; it works for 7 more days.", email=invitation.email), "success")
    return redirect(url_for("settings.team"))


@bp.post("/team/invitations/<int:invitation_id>/revoke")
@tenant_required
def invitation_revoke(invitation_id: int):
    try:
        invitation = team_service.revoke_invitation(current_client_id(), invitation_id)
    except LookupError:
        abort(404)
    audit("invitation.revoked", target=("invitations", invitation_id), details={"email": invitation.email})
    return _done(_("The invitation to %(email)s was withdrawn; its link no longer works.", email=invitation.email))


@bp.post("/team/transfer")
@tenant_required
def transfer_ownership():
    form = _with_new_owners(TransferForm(), team_service.members(current_client_id()))
    if not form.validate_on_submit():
        return _page(transfer=form, status=422)
    try:
        new_owner = team_service.transfer_ownership(current_user, form.new_owner.data, form.password.data)
    except LookupError:
        abort(404)
    except AccountError as exc:
        db.session.rollback()
        getattr(form, exc.field or "password").errors.append(str(exc))
        return _page(transfer=form, status=422)
    audit("ownership.transferred", target=new_owner, details={"from": current_user.email, "to": new_owner.email})
    return _done(_("%(name)s is now the owner; you are a manager.", name=new_owner.name))


@bp.post("/team/close")
@tenant_required
def close_account():
    form = CloseAccountForm()
    if not form.validate_on_submit():
        return _page(close=form, status=422)
    if (form.confirm.data or "").strip().upper() != "CLOSE":
        form.confirm.errors.append(_("Type CLOSE to confirm."))
    else:
        try:
            team_service.close_account(current_user, form.password.data)
        except AccountError as exc:
            db.session.rollback()
            form.password.errors.append(str(exc))
        else:
            audit("account.closed", target=("clients", current_client_id()))
            db.session.commit()
            logout_user()
            flash(_("The account is closed. Its data and balance are kept for Bulkapp to settle with you."), "info")
            return redirect(url_for("auth.login"))
    return _page(close=form, status=422)
