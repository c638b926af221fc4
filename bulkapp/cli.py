"""Command-line interface (flask --app wsgi ...), per API.md."""

from __future__ import annotations

import json

import click
from flask import Flask

from bulkapp.extensions import db
from bulkapp.services.accounts.demo import seed_demo
from bulkapp.services.accounts.roles import AGENT, OWNER, ROLES
from bulkapp.services.accounts.users import AccountError, create_client, create_user, tenant_owner


def init_cli(app: Flask) -> None:
    app.cli.add_command(create_client_command)
    app.cli.add_command(create_user_command)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(stats_group)


@click.command("create-client")
@click.argument("name")
@click.option("--sender-id", default=None, help="SMS sender id, e.g. PRADY_TECH.")
@click.option("--balance", default="0", help="Opening balance in KSH.")
@click.option("--price-per-unit", default=None, help="KSH per SMS unit.")
@click.option("--test-mode/--live", default=True, help="Sandbox provider (default) or live providers.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON line.")
def create_client_command(name, sender_id, balance, price_per_unit, test_mode, as_json):
    """Create a tenant and print its API key (shown only once)."""
    try:
        client, key = create_client(
            name, sender_id=sender_id, balance=balance, price_per_unit=price_per_unit, test_mode=test_mode
        )
    except (AccountError, ArithmeticError) as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    if as_json:
        click.echo(json.dumps({"client_id": client.id, "api_key": key}))
    else:
        click.echo(f"Created client {client.id} ({client.name}), paybill account {client.account_number}.")
        click.echo(f"API key (shown once): {key}")


@click.command("create-user")
@click.argument("email")
@click.option("--password", required=True)
@click.option("--client-id", type=int, default=None, help="The tenant this user belongs to.")
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default=None,
    help="The role in the tenant (default: owner when it has none yet, else agent).",
)
@click.option("--admin", is_flag=True, help="A platform admin (no tenant).")
@click.option("--name", default=None)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON line.")
def create_user_command(email, password, client_id, role, admin, name, as_json):
    """Create a user in a tenant (--client-id N) or a platform admin (--admin); verified, terms accepted."""
    from bulkapp.models import Client

    if client_id is not None and db.session.get(Client, client_id) is None:
        raise click.ClickException(f"No client with id {client_id}.")
    if admin == (client_id is not None):
        raise click.ClickException("Give exactly one of --client-id N or --admin.")
    if admin and role is not None:
        raise click.ClickException("--role is for tenant users; a platform admin has none.")
    if client_id is not None and role is None:
        role = AGENT if tenant_owner(client_id) is not None else OWNER
    try:
        user = create_user(email, password, name=name, client_id=client_id, admin=admin, tenant_role=role)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(json.dumps({"user_id": user.id}) if as_json else f"Created user {user.id} <{user.email}>.")


@click.command("seed-demo")
def seed_demo_command():
    """Create (or keep) the demo tenant and print the demo logins."""
    logins = seed_demo()
    db.session.commit()
    click.echo("Demo logins:")
    for role, email, password in logins:
        click.echo(f"  {role:15} {email} / {password}")


@click.group("stats")
def stats_group():
    """The dashboard's hourly roll-ups of messages and spend."""


@stats_group.command("rebuild")
def stats_rebuild_command():
    """Recompute every hour of the roll-ups from messages and the wallet ledger."""
    from bulkapp.services.insights import hourly_stats as message_stats

    for rollup in message_stats.ROLLUPS:
        hours = message_stats.refresh(rollup, rebuild=True)
        db.session.commit()
        click.echo(f"Rebuilt {rollup.name}: {hours} tenant-hours.")
