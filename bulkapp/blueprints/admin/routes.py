"""Admin views: the clients list with balances, and one client's overview."""

import sqlalchemy as sa
from flask import abort, request

from bulkapp import htmx
from bulkapp.blueprints.admin import bp
from bulkapp.extensions import db
from bulkapp.models import Client, User
from bulkapp.tenancy import admin_required


@bp.get("/")
@admin_required
def index():
    q = (request.args.get("q") or "").strip()
    query = sa.select(Client).order_by(Client.name)
    if q:
        like = f"%{q}%"
        query = query.where(sa.or_(Client.name.ilike(like), Client.account_number.ilike(like)))
    clients = db.session.scalars(query.limit(200)).all()
    totals = db.session.execute(sa.select(sa.func.count(Client.id), sa.func.sum(Client.balance))).one()
    return htmx.render("admin/page.html", "admin/partials/clients.html", clients=clients, q=q, totals=totals)


@bp.get("/clients/<int:client_id>")
@admin_required
def client(client_id: int):
    client = db.session.get(Client, client_id)
    if client is None:
        abort(404)
    users = db.session.scalars(sa.select(User).where(User.client_id == client_id).order_by(User.id)).all()
    return htmx.render("admin/client.html", "admin/partials/client.html", client=client, users=users)
