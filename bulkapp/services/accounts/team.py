"""A tenant's team: members and their roles, removal, ownership, closing the account, and invitations.

Invitations are rows (pending until accepted, revoked or past ``expires_at``, 7 days after they were made or
last resent); the link carries a signed ``{invitation id, nonce}``, so a forged link is refused and a revoked
or expired one changes nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.exc import IntegrityError

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Client, Invitation, User
from bulkapp.services.accounts.passwords import hash_password, verify_password
from bulkapp.services.accounts.roles import AGENT, MANAGER, OWNER, ROLES
from bulkapp.services.accounts.sessions import end_all_sessions
from bulkapp.services.accounts.users import AccountError, create_user, normalise_email

INVITE_DAYS = 7
INVITABLE_ROLES = (AGENT, MANAGER)  # an owner is made by transferring the ownership, never by invitation


def members(client_id: int) -> list[User]:
    """The tenant's active users, the owner first, then by name."""
    order = sa.case((User.tenant_role == OWNER, 0), (User.tenant_role == MANAGER, 1), else_=2)
    query = sa.select(User).where(User.client_id == client_id, User.is_active_user.is_(True))
    return db.session.scalars(query.order_by(order, User.name, User.id)).all()


def member(client_id: int, user_id: int) -> User:
    """An active member of the tenant; another tenant's user is "not found", like a missing one."""
    user = db.session.get(User, user_id)
    if user is None or user.client_id != client_id or not user.is_active_user:
        raise LookupError(user_id)
    return user


def change_role(client_id: int, user_id: int, role: str) -> User:
    """Make a member an agent or a manager. The owner's role changes only by transferring the ownership."""
    user = member(client_id, user_id)
    if role not in ROLES:
        raise AccountError(_l("Choose a role from the list."), "role")
    if user.tenant_role == OWNER or role == OWNER:
        raise AccountError(_l("The owner changes only by transferring the ownership."), "role")
    user.tenant_role = role
    db.session.flush()
    return user


def remove_member(client_id: int, user_id: int, actor: User) -> User:
    """Take a member out of the team: they cannot sign in any more and every session of theirs ends now.
    The owner cannot be removed (transfer the ownership first), nor can you remove yourself."""
    user = member(client_id, user_id)
    if user.tenant_role == OWNER:
        raise AccountError(_l("The owner cannot be removed. Transfer the ownership first."))
    if user.id == actor.id:
        raise AccountError(_l("You cannot remove yourself. Ask a manager or the owner."))
    user.is_active_user = False
    user.tenant_role = None
    db.session.flush()
    end_all_sessions(user.id)
    return user


def transfer_ownership(owner: User, new_owner_id: int, password: str) -> User:
    """Hand the tenant to another active member (the owner's password confirms it); the owner becomes manager."""
    if owner.tenant_role != OWNER:
        raise AccountError(_l("Only the owner can transfer the ownership."))
    if not verify_password(owner.password, password or ""):
        raise AccountError(_l("Your password is not right."), "password")
    new_owner = member(owner.client_id, new_owner_id)
    if new_owner.id == owner.id:
        raise AccountError(_l("Choose another member of the team."), "new_owner")
    owner.tenant_role, new_owner.tenant_role = MANAGER, OWNER
    db.session.flush()
    return new_owner


def close_account(owner: User, password: str) -> Client:
    """Close the owner's tenant: it stops sending (like a suspended one) and nobody signs in any more (every
    session ends, pending invitations are withdrawn). Its data and remaining balance are kept for a platform
    admin to settle."""
    if owner.tenant_role != OWNER:
        raise AccountError(_l("Only the owner can close the account."))
    if not verify_password(owner.password, password or ""):
        raise AccountError(_l("Your password is not right."), "password")
    client = db.session.get(Client, owner.client_id)
    client.closed_at = utcnow()
    client.status = False
    db.session.execute(
        sa.update(Invitation)
        .where(Invitation.client_id == client.id, Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
        .values(revoked_at=client.closed_at)
        .execution_options(synchronize_session=False)
    )
    db.session.flush()
    for user in client.users:
        end_all_sessions(user.id)
    return client


# Invitations


@dataclass
class InviteView:
    invitation: Invitation
    link_token: str
    expired: bool


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="bulkapp-invitation")


def invitation_token(invitation: Invitation) -> str:
    return _serializer().dumps({"i": invitation.id, "n": invitation.nonce})


class InvitationUsed(AccountError):
    """The invitation's address has an account already (it was accepted, or it was taken before)."""

    def __init__(self) -> None:
        super().__init__(_l("This invitation was already used. Sign in instead."))


def invite_teammate(
    client_id: int, *, email: str, name: str, role: str = AGENT, inviter: User | None = None
) -> tuple[str, int | None]:
    """A pending invitation (7 days) for ``email`` to join the tenant as ``role``: ``(token, taken_by)``.

    The inviter gets a link whether or not the address already has an account (the page must not tell who
    uses Bulkapp); ``taken_by`` is that account's user id, so the caller can tell its owner by email instead.
    """
    email = normalise_email(email)
    if "@" not in email:
        raise AccountError(_l("Enter a valid email address."), "email")
    if role not in INVITABLE_ROLES:
        raise AccountError(_l("Choose a role from the list."), "role")
    taken_by = db.session.scalar(sa.select(User.id).where(User.email == email))
    if taken_by is not None and _removed_member(client_id, email) is not None:
        taken_by = None  # someone removed from this team earlier: the invitation brings them back
    invitation = Invitation(
        client_id=client_id,
        email=email,
        name=(name or "").strip() or None,
        tenant_role=role,
        invited_by_id=inviter.id if inviter is not None else None,
        nonce=secrets.token_hex(8),
        expires_at=utcnow() + timedelta(days=INVITE_DAYS),
    )
    db.session.add(invitation)
    db.session.flush()
    return invitation_token(invitation), taken_by


def pending_invitations(client_id: int) -> list[InviteView]:
    """Invitations neither accepted nor revoked, newest first (expired ones too, so they can be resent)."""
    rows = db.session.scalars(
        sa.select(Invitation)
        .where(Invitation.client_id == client_id, Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
        .order_by(Invitation.id.desc())
    ).all()
    now = utcnow()
    return [InviteView(row, invitation_token(row), row.expires_at <= now) for row in rows]


def _pending(client_id: int, invitation_id: int) -> Invitation:
    row = db.session.get(Invitation, invitation_id)
    if row is None or row.client_id != client_id or row.accepted_at or row.revoked_at:
        raise LookupError(invitation_id)
    return row


def resend_invitation(client_id: int, invitation_id: int) -> Invitation:
    """Give a pending invitation 7 more days from now (the caller emails it again)."""
    row = _pending(client_id, invitation_id)
    row.expires_at = utcnow() + timedelta(days=INVITE_DAYS)
    db.session.flush()
    return row


def revoke_invitation(client_id: int, invitation_id: int) -> Invitation:
    """Withdraw a pending invitation: its link stops working."""
    row = _pending(client_id, invitation_id)
    row.revoked_at = utcnow()
    db.session.flush()
    return row


def invitation_for(token: str) -> Invitation:
    """The invitation row of a link (any state); AccountError when the link is forged."""
    try:
        data = _serializer().loads(token)
    except BadSignature:
        raise AccountError(_l("This invitation link is not valid.")) from None
    row = db.session.get(Invitation, data.get("i")) if isinstance(data, dict) else None
    if row is None or not secrets.compare_digest(str(data.get("n")), row.nonce):
        raise AccountError(_l("This invitation link is not valid."))
    return row


def read_invite(token: str) -> dict:
    """The invitation's content, or AccountError when it is forged, revoked, expired or already used."""
    row = invitation_for(token)
    holder = db.session.scalar(sa.select(User.id).where(User.email == row.email))
    if row.accepted_at is not None or (holder and _removed_member(row.client_id, row.email) is None):
        raise InvitationUsed()
    if row.revoked_at is not None:
        raise AccountError(_l("This invitation was withdrawn. Ask your teammate for a new one."))
    if row.expires_at <= utcnow():
        raise AccountError(_l("This invitation has expired. Ask your teammate for a new one."))
    return {"client_id": row.client_id, "email": row.email, "name": row.name or "", "role": row.tenant_role}


def accept_invite(token: str, *, name: str, password: str) -> User:
    """Create the invited user. InvitationUsed when it was used, also by a concurrent acceptance: the unique
    email decides, inside a savepoint, so the losers' transactions stay usable."""
    data = read_invite(token)
    removed = _removed_member(data["client_id"], data["email"])
    if removed is not None:
        return _rejoin(token, removed, data, name=name, password=password)
    try:
        with db.session.begin_nested():
            user = create_user(
                data["email"],
                password,
                name=name or data["name"],
                client_id=data["client_id"],
                tenant_role=data["role"],
            )
    except IntegrityError:
        raise InvitationUsed() from None
    except AccountError as exc:
        if exc.field == "email":  # created between our check and our insert
            raise InvitationUsed() from None
        raise
    invitation_for(token).accepted_at = utcnow()
    db.session.flush()
    return user


def _removed_member(client_id: int, email: str) -> User | None:
    """A user this team removed (inactive, no role; a platform admin's "disabled" keeps the role)."""
    return db.session.scalar(
        sa.select(User).where(
            User.email == email,
            User.client_id == client_id,
            User.is_active_user.is_(False),
            User.tenant_role.is_(None),
        )
    )


def _rejoin(token: str, user: User, data: dict, *, name: str, password: str) -> User:
    """A removed member accepts a new invitation: the same account comes back with the invited role and the
    new password. One acceptance wins (the UPDATE's condition); the others get InvitationUsed."""
    if len(password or "") < 8:
        raise AccountError(_l("The password needs at least 8 characters."), "password")
    back = db.session.execute(
        sa.update(User)
        .where(User.id == user.id, User.is_active_user.is_(False), User.tenant_role.is_(None))
        .values(
            is_active_user=True,
            tenant_role=data["role"],
            password=hash_password(password),
            name=(name or data["name"] or user.name).strip(),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if not back:
        raise InvitationUsed()
    invitation_for(token).accepted_at = utcnow()
    db.session.flush()
    db.session.refresh(user)
    return user
