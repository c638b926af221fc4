"""The email that carries a teammate's invitation: who invited them, to which business, the link and its expiry.

It leaves like every account email, through ``outbox.deliver`` (SMTP with ``MAIL_HOST``, else logged and, in
development, kept at /dev/outbox).
"""

from __future__ import annotations

from flask import current_app, render_template, url_for
from flask_babel import force_locale
from flask_babel import gettext as _

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.i18n import DEFAULT_LANGUAGE, LANGUAGES
from bulkapp.models import Invitation
from bulkapp.public_url import public_base_url, public_url
from bulkapp.services.accounts.outbox import deliver
from bulkapp.services.accounts.roles import ROLE_LABELS
from bulkapp.services.accounts.team import INVITE_DAYS, invitation_token


def send_invitation(invitation_id: int, language: str) -> bool:
    """Email a pending invitation to its address, in the inviter's language; False when it is no longer pending."""
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or invitation.accepted_at or invitation.revoked_at or invitation.expires_at <= utcnow():
        return False
    inviter = invitation.invited_by.name if invitation.invited_by else invitation.client.name
    with (
        current_app.test_request_context(base_url=public_base_url()),
        force_locale(language if language in LANGUAGES else DEFAULT_LANGUAGE),
    ):
        link = public_url(url_for("auth.accept_invite", token=invitation_token(invitation)))
        subject = _("%(inviter)s invited you to %(team)s on Bulkapp", inviter=inviter, team=invitation.client.name)
        body = render_template(
            "email/invitation.txt",
            invitation=invitation,
            inviter=inviter,
            team=invitation.client.name,
            role=str(ROLE_LABELS.get(invitation.tenant_role, invitation.tenant_role)),
            link=link,
            days=INVITE_DAYS,
        )
    return deliver(f"account:invitation:{invitation.id}", invitation.email, subject, body)
