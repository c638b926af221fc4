"""Platform administration > Audit log: every tenant's log and the platform's own events (read-only)."""

from __future__ import annotations

from bulkapp.blueprints.admin.blueprint import bp
from bulkapp.blueprints.audit_trail import export_log, render_log
from bulkapp.tenancy import admin_required


@bp.get("/audit")
@admin_required
def audit():
    return render_log("admin/audit.html", None, area="admin")


@bp.get("/audit/export.csv")
@admin_required
def audit_export():
    return export_log(None, "audit-log-all")
