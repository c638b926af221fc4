"""Tenant roles (owner, manager, agent): one permission map, checked by walking every route as each role."""

import pytest
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Client, User
from bulkapp.services.accounts.roles import NOT_TENANT, PERMISSIONS, RANK, ROLES, has_role, required_role
from bulkapp.services.accounts.users import create_user
from tests.conftest import PASSWORD


@pytest.fixture
def team(tenant):
    """The tenant's owner (the fixture's user), a manager and an agent."""
    manager = create_user("manager@a.example", PASSWORD, name="Mona Manager", client_id=tenant.id)
    agent = create_user("agent@a.example", PASSWORD, name="Abdi Agent", client_id=tenant.id, tenant_role="agent")
    db.session.commit()
    return {"owner": tenant.test_user, "manager": manager, "agent": agent}


def _url(rule) -> str:
    url = rule.rule
    for arg in rule.arguments:
        url = url.replace(f"<int:{arg}>", "1").replace(f"<{arg}>", "x")
    return url


def test_the_fixture_user_is_the_owner_and_later_users_managers(team):
    assert [team[r].tenant_role for r in ("owner", "manager", "agent")] == ["owner", "manager", "agent"]


def test_every_tenant_route_answers_as_the_map_says_for_every_role(app, team):
    """403 exactly where the role ranks below the map's minimum (any method: nothing runs); elsewhere a GET is
    never refused for the role (it may be 200, a redirect, or 404 for a made-up id)."""
    checked = {role: 0 for role in ROLES}
    for role in ROLES:
        client = app.test_client()
        client.post("/login", data={"email": team[role].email, "password": PASSWORD})
        for rule in app.url_map.iter_rules():
            needed = required_role(rule.endpoint)
            if needed is None or rule.endpoint in ("settings.close_account",):
                continue
            denied = RANK[role] < RANK[needed]
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                if not denied and method != "GET":
                    continue  # an allowed POST would change things; the forged-POST tests cover the denial side
                answer = client.open(_url(rule), method=method)
                answer.close()  # a streamed download keeps its request open until closed
                if denied:
                    assert answer.status_code == 403, f"{role} {method} {rule.rule}: {answer.status_code}"
                else:
                    assert answer.status_code != 403, f"{role} {method} {rule.rule} was refused"
                checked[role] += 1
    assert all(checked.values()), checked


def test_every_endpoint_has_a_known_blueprint_and_the_map_names_real_endpoints(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    blueprints = {endpoint.split(".")[0] for endpoint in endpoints if "." in endpoint}
    tenant_blueprints = blueprints - NOT_TENANT
    assert {"dashboard", "inbox", "contacts", "campaigns", "settings", "wallet"} <= tenant_blueprints
    for key in PERMISSIONS:  # a typo in the map would silently protect nothing
        assert key in blueprints or any(e == key or e.startswith(key) for e in endpoints), key


@pytest.mark.parametrize(
    ("path", "agent", "manager"),
    [
        ("/settings/api", 403, 200),
        ("/settings/channels", 403, 200),
        ("/settings/webhooks", 403, 200),
        ("/settings/team", 403, 200),
        ("/inbox", 200, 200),
        ("/contacts", 200, 200),
        ("/campaigns", 200, 200),
        ("/wallet/history.csv", 403, 200),
        ("/settings/profile", 200, 200),
        ("/wallet/", 200, 200),
    ],
)
def test_api_md_contract_for_agents_and_managers(app, team, path, agent, manager):
    for role, expected in (("agent", agent), ("manager", manager), ("owner", manager)):
        client = app.test_client()
        client.post("/login", data={"email": team[role].email, "password": PASSWORD})
        answer = client.get(path, follow_redirects=True)
        answer.get_data()
        answer.close()
        assert answer.status_code == expected, f"{role} {path}: {answer.status_code}"
    denied = app.test_client()
    denied.post("/login", data={"email": team["agent"].email, "password": PASSWORD})
    if agent == 403:
        assert "Your role in this team cannot open that page." in denied.get(path).get_data(as_text=True)


def test_a_forged_post_by_an_agent_changes_nothing(app, team, tenant):
    client = app.test_client()
    client.post("/login", data={"email": team["agent"].email, "password": PASSWORD})
    key_before = tenant.api_key
    assert client.post("/settings/api/rotate").status_code == 403
    assert client.post(f"/settings/team/members/{team['agent'].id}/role", data={"role": "manager"}).status_code == 403
    assert client.post(f"/settings/team/members/{team['manager'].id}/remove").status_code == 403
    assert client.post("/settings/team/invite", data={"name": "X", "email": "x@a.example"}).status_code == 403
    db.session.expire_all()
    assert db.session.get(Client, tenant.id).api_key == key_before
    assert db.session.get(User, team["agent"].id).tenant_role == "agent"
    assert db.session.get(User, team["manager"].id).is_active_user


def test_a_manager_cannot_take_the_owners_pages(app, team):
    client = app.test_client()
    client.post("/login", data={"email": team["manager"].email, "password": PASSWORD})
    answer = client.post("/settings/team/transfer", data={"new_owner": team["manager"].id, "password": PASSWORD})
    assert answer.status_code == 403
    assert client.post("/settings/team/close", data={"password": PASSWORD, "confirm": "CLOSE"}).status_code == 403
    db.session.expire_all()
    assert db.session.get(User, team["owner"].id).tenant_role == "owner"


def test_agents_see_only_the_pages_they_may_open(app, team):
    client = app.test_client()
    client.post("/login", data={"email": team["agent"].email, "password": PASSWORD})
    settings = client.get("/settings/").get_data(as_text=True)
    assert "/settings/profile" in settings
    for hidden in ("/settings/api", "/settings/channels", "/settings/webhooks", "/settings/team"):
        assert f'href="{hidden}"' not in settings, hidden
    manager = app.test_client()
    manager.post("/login", data={"email": team["manager"].email, "password": PASSWORD})
    assert 'href="/settings/team"' in manager.get("/settings/").get_data(as_text=True)
    assert 'id="team-transfer"' not in manager.get("/settings/team").get_data(as_text=True)  # the owner's cards
    owner = app.test_client()
    owner.post("/login", data={"email": team["owner"].email, "password": PASSWORD})
    assert 'id="team-transfer"' in owner.get("/settings/team").get_data(as_text=True)


def test_has_role_ranks(team):
    assert has_role(team["owner"], "manager") and has_role(team["manager"], "agent")
    assert not has_role(team["agent"], "manager") and not has_role(team["manager"], "owner")


def test_migration_makes_the_first_user_owner_and_the_others_managers(app, tenant):
    """The data step of c15roles0001, run on users without a tenant role."""
    create_user("second@a.example", PASSWORD, client_id=tenant.id)
    db.session.execute(sa.update(User).values(tenant_role=None))
    db.session.commit()
    db.session.execute(
        sa.text(
            "UPDATE users SET tenant_role = CASE WHEN id = (SELECT MIN(u2.id) FROM users u2 "
            "WHERE u2.client_id = users.client_id) THEN 'owner' ELSE 'manager' END WHERE client_id IS NOT NULL"
        )
    )
    db.session.commit()
    roles = dict(db.session.execute(sa.select(User.email, User.tenant_role).where(User.client_id == tenant.id)).all())
    assert roles == {tenant.test_user.email: "owner", "second@a.example": "manager"}


def test_the_wallet_hides_the_statement_export_and_the_alert_from_agents(app, team):
    pages = {}
    for role in ("agent", "manager"):
        client = app.test_client()
        client.post("/login", data={"email": team[role].email, "password": PASSWORD})
        pages[role] = client.get("/wallet/").get_data(as_text=True)
    assert "/wallet/history.csv" not in pages["agent"] and 'id="low-balance-form"' not in pages["agent"]
    assert "/wallet/history.csv" in pages["manager"] and 'id="low-balance-form"' in pages["manager"]
    assert "/wallet/topup" in pages["agent"]  # agents still top up


def test_a_platform_admin_sees_roles_and_a_closed_account(app, team, tenant, admin_user):
    from bulkapp.columns import utcnow

    db.session.get(Client, tenant.id).closed_at = utcnow()
    db.session.commit()
    client = app.test_client()
    client.post("/login", data={"email": admin_user.email, "password": PASSWORD})
    page = client.get(f"/admin/clients/{tenant.id}").get_data(as_text=True)
    assert "Closed by its owner" in page and "Owner ·" in page and "Agent ·" in page


def test_agents_manage_their_own_profile_and_sessions(app, team):
    for endpoint in (
        "settings.profile",
        "settings.change_password",
        "settings.end_session",
        "settings.end_all_sessions",
    ):
        assert required_role(endpoint) == "agent", endpoint
    client = app.test_client()
    client.post("/login", data={"email": team["agent"].email, "password": PASSWORD})
    assert client.get("/settings/profile").status_code == 200
