"""Jobs about tenants and users."""

from bulkapp.extensions import db
from bulkapp.jobs import job


@job
def send_welcome(user_id: int) -> int | None:
    """Greet a new tenant with a notification that says where to start."""
    from bulkapp.models import User
    from bulkapp.services.notifications.notify import notify

    user = db.session.get(User, user_id)
    if user is None or user.client_id is None:
        return None
    note = notify(user.client_id, "welcome", "welcome", user_id=user.id)
    return note.id


@job
def send_account_email(kind: str, user_id: int, language: str, client_id: int | None = None) -> bool:
    """An account email (sign-up confirmation, "you already have an account", invitation to a taken address)."""
    from bulkapp.services.accounts.mail import send_account_email as send

    return send(kind, user_id, language, client_id)


@job
def send_email_change(user_id: int, new_email: str, language: str) -> bool:
    """The link that confirms a new sign-in address, sent to that address."""
    from bulkapp.services.accounts.mail import send_email_change as send

    return send(user_id, new_email, language)


@job
def send_invitation_email(invitation_id: int, language: str) -> bool:
    """A teammate's invitation, naming the inviter and the business."""
    from bulkapp.services.accounts.invite_mail import send_invitation

    return send_invitation(invitation_id, language)
