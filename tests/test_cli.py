"""The command line of API.md: create-client, create-user, seed-demo."""

import json
from decimal import Decimal

import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Channel, Client, Contact, Template, User
from bulkapp.services.accounts.api_keys import hash_api_key
from tests.conftest import ledger_balance


def test_create_client_json(app):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["create-client", "Shule Bora", "--sender-id", "SHULEBORA", "--balance", "250.50",
              "--price-per-unit", "0.75", "--live", "--json"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip())
    assert set(out) == {"client_id", "api_key"}
    client = db.session.get(Client, out["client_id"])
    assert client.sender_id == "SHULEBORA" and client.is_test_mode is False
    assert client.price_per_unit == Decimal("0.75") and client.balance == Decimal("250.50")
    assert ledger_balance(client.id) == Decimal("250.50")
    assert client.api_key == hash_api_key(out["api_key"]) and out["api_key"] not in (client.api_key or "")


def test_create_client_rejects_bad_input(app):
    result = app.test_cli_runner().invoke(args=["create-client", "X", "--price-per-unit", "abc"])
    assert result.exit_code != 0 and "Error" in result.output
    assert db.session.scalar(sa.select(sa.func.count(Client.id))) == 0


def test_create_user_in_a_client_and_an_admin(app, tenant):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-user", "ops@a.example", "--password", "secret-pass", "--client-id",
                                 str(tenant.id), "--name", "Ops", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    user = db.session.get(User, json.loads(result.output)["user_id"])
    assert (user.client_id, user.role, user.name) == (tenant.id, "user", "Ops")
    admin = runner.invoke(args=["create-user", "root@x.example", "--password", "secret-pass", "--admin", "--json"])
    admin_user = db.session.get(User, json.loads(admin.output)["user_id"])
    assert admin_user.role == "admin" and admin_user.client_id is None


def test_create_user_errors(app, tenant):
    runner = app.test_cli_runner()
    assert (
        "No client"
        in runner.invoke(args=["create-user", "a@b.co", "--password", "12345678", "--client-id", "999"]).output
    )
    assert "exactly one" in runner.invoke(args=["create-user", "a@b.co", "--password", "12345678"]).output
    dup = runner.invoke(
        args=["create-user", tenant.test_user.email, "--password", "12345678", "--client-id", str(tenant.id)]
    )
    assert dup.exit_code != 0 and "already exists" in dup.output


def test_seed_demo_is_idempotent(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0 and "demo@bulkapp.local" in first.output and "admin@bulkapp.local" in first.output
    counts = _counts()
    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0
    assert _counts() == counts
    client_count, contacts, templates, channels, users, departments = counts
    assert (client_count, contacts, templates, channels, users) == (1, 5, 2, 1, 2)
    assert departments == 2


def _counts():
    db.session.expire_all()
    count = lambda col: db.session.scalar(sa.select(sa.func.count(col)))  # noqa: E731
    departments = db.session.scalar(sa.select(sa.func.count(sa.distinct(Contact.department))))
    return (count(Client.id), count(Contact.id), count(Template.id), count(Channel.id), count(User.id), departments)


def _tenant_role(user_id: int) -> str | None:
    from bulkapp.extensions import db
    from bulkapp.models import User

    db.session.expire_all()
    return db.session.get(User, user_id).tenant_role


def test_create_user_role_defaults_to_owner_then_agent_and_refuses_a_second_owner(app):
    runner = app.test_cli_runner()
    made = runner.invoke(args=["create-client", "Role Shop", "--json"])
    client_id = json.loads(made.output)["client_id"]
    base = ["--password", "secret-pass", "--client-id", str(client_id), "--json"]
    first = runner.invoke(args=["create-user", "first@role.example", *base])
    second = runner.invoke(args=["create-user", "second@role.example", *base])
    manager = runner.invoke(args=["create-user", "third@role.example", *base, "--role", "manager"])
    assert first.exit_code == second.exit_code == manager.exit_code == 0, first.output + second.output
    assert _tenant_role(json.loads(first.output)["user_id"]) == "owner"  # the tenant had none yet
    assert _tenant_role(json.loads(second.output)["user_id"]) == "agent"
    assert _tenant_role(json.loads(manager.output)["user_id"]) == "manager"
    again = runner.invoke(args=["create-user", "fourth@role.example", *base, "--role", "owner"])
    assert again.exit_code == 1 and "already has an owner" in again.output
    bad = runner.invoke(args=["create-user", "fifth@role.example", *base, "--role", "admin"])
    assert bad.exit_code != 0


def test_users_made_on_the_command_line_sign_in_at_once(app):
    runner = app.test_cli_runner()
    client_id = json.loads(runner.invoke(args=["create-client", "Signin Shop", "--json"]).output)["client_id"]
    args = ["create-user", "boss@signin.example", "--password", "secret-pass", "--client-id", str(client_id)]
    runner.invoke(args=args)
    web = app.test_client()
    answer = web.post("/login", data={"email": "boss@signin.example", "password": "secret-pass"})
    assert answer.status_code == 302 and answer.location.endswith("/dashboard")
    assert web.get("/settings/team").status_code == 200  # the owner
