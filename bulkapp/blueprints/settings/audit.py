"""Settings > Audit log: who did what in this tenant (read-only; filters, keyset pages, CSV)."""

from __future__ import annotations

from bulkapp.blueprints.audit_trail import export_log, render_log
from bulkapp.blueprints.settings.blueprint import bp
from bulkapp.tenancy import current_client_id, tenant_required


@bp.get("/audit")
@tenant_required
def audit():
    return render_log("settings/audit.html", current_client_id(), area="settings")


@bp.get("/audit/export.csv")
@tenant_required
def audit_export():
    return export_log(current_client_id(), "audit-log")
