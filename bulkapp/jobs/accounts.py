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
