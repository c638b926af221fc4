"""Jobs about contacts: running a CSV import, and resuming imports a crashed worker left behind."""

from __future__ import annotations

import logging

from bulkapp.extensions import db, rq
from bulkapp.i18n import N_, stored_sentences
from bulkapp.jobs import job

log = logging.getLogger(__name__)
# Stored in English on the import; the import page shows it in the reader's language (i18n.stored_text).
(IMPORT_CRASHED,) = stored_sentences(
    N_(
        "Something went wrong during the import; the rows before it stopped were imported. Upload the "
        "file again to finish (rows already imported are simply updated)."
    )
)


@job
def import_contacts(import_id: int) -> str:
    """Run (or resume) one contacts import, committing after every chunk so progress shows as it goes.

    Returns ``"done"``, ``"skipped"`` (another run has it, or it is finished), or ``"failed"`` (the reason is
    stored on the import; the rows before the failure stay imported).
    """
    from bulkapp.services.contacts import csv_files as contact_csv
    from bulkapp.services.contacts import importing as contact_import

    outcome = "skipped"
    try:
        for imp in contact_import.run_import(import_id):
            db.session.commit()
            outcome = imp.status
    except contact_import.ImportSuperseded:
        db.session.rollback()
        return "skipped"
    except Exception as exc:
        db.session.rollback()
        if isinstance(exc, contact_csv.ImportFileError):
            message = str(exc.message)  # raised while running: an English sentence (contact_import.FILE_GONE)
        else:
            log.exception("contacts import %s failed", import_id)
            message = IMPORT_CRASHED
        contact_import.mark_failed(import_id, message)
        db.session.commit()
        return "failed"
    return "done" if outcome == "done" else "skipped"


@job
def resume_stalled_imports() -> int:
    """Periodic: re-enqueue imports whose job died (no heartbeat) or was lost; drop uploads never started."""
    from bulkapp.services.contacts import importing as contact_import

    stalled = contact_import.stalled_imports()
    contact_import.purge_abandoned_uploads()
    db.session.commit()
    for import_id in stalled:
        rq.enqueue(import_contacts, import_id, queue="default")
    return len(stalled)
