"""Jobs about notifications."""

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.jobs import job
from bulkapp.services.notifications import email as notification_email


@job
def email_notifications() -> int:
    """Periodic: email new notifications to the users who chose their types; returns emails sent."""
    now = utcnow()
    sent = 0
    for note_id in notification_email.due_notification_ids(now):
        if notification_email.claim(note_id, now):
            db.session.commit()  # claimed before sending: a concurrent run skips it
            sent += notification_email.send_copies(note_id)
    return sent
