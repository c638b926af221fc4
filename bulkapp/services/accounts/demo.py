"""The demo tenant that ``seed-demo`` and ``make run`` create (idempotent)."""

from __future__ import annotations

import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Client, Contact, Template, User
from bulkapp.services.accounts.users import create_client, create_user

DEMO_CLIENT = "Mama Mboga Supplies"
DEMO_USER = ("demo@bulkapp.local", "demo-password")
DEMO_ADMIN = ("admin@bulkapp.local", "admin-password")

DEMO_CONTACTS = (
    ("Wanjiru Kamau", "0712345678", "Customers"),
    ("Otieno Odhiambo", "0722000111", "Customers"),
    ("Akinyi Achieng", "0733000222", "Customers"),
    ("Kiprop Kiptoo", "0110000333", "Suppliers"),
    ("Mutua Musyoka", "0799000444", "Suppliers"),
)
DEMO_TEMPLATES = (
    ("Order ready", "Hello {{name}}, your order is ready for pick-up at our Westlands shop.", ["name"]),
    ("Weekly offer", "Hi {{name}}! This week: sukuma wiki KSh 20 a bunch. Karibu!", ["name"]),
)


def seed_demo() -> list[tuple[str, str, str]]:
    """Create the demo tenant, its contacts, templates, sandbox channel, a demo user and an admin.

    Running it again changes nothing. Returns the logins as (role, email, password).
    """
    from bulkapp.phones import normalise_msisdn

    client = db.session.scalar(sa.select(Client).where(Client.name == DEMO_CLIENT))
    if client is None:
        client, _key = create_client(DEMO_CLIENT, sender_id="MAMAMBOGA", balance="500.00", test_mode=True)
    for name, number, department in DEMO_CONTACTS:
        e164 = normalise_msisdn(number)
        exists = db.session.scalar(sa.select(Contact.id).where(Contact.client_id == client.id, Contact.contact == e164))
        if not exists:
            db.session.add(Contact(client_id=client.id, name=name, contact=e164, department=department, fields={}))
    for name, content, variables in DEMO_TEMPLATES:
        exists = db.session.scalar(sa.select(Template.id).where(Template.client_id == client.id, Template.name == name))
        if not exists:
            db.session.add(
                Template(client_id=client.id, name=name, content=content, channel="sms", variables=variables)
            )
    for (email, password), kwargs in (
        (DEMO_USER, {"client_id": client.id, "name": "Demo Owner"}),
        (DEMO_ADMIN, {"admin": True, "name": "Platform Admin"}),
    ):
        if not db.session.scalar(sa.select(User.id).where(User.email == email)):
            create_user(email, password, **kwargs)
    db.session.flush()
    return [("tenant user", *DEMO_USER), ("platform admin", *DEMO_ADMIN)]
