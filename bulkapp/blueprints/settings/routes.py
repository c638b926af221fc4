"""The settings overview."""

from flask import render_template

from bulkapp.blueprints.settings.blueprint import bp
from bulkapp.tenancy import tenant_required


@bp.get("/")
@tenant_required
def index():
    return render_template("settings/page.html")
