"""Settings > Team in a browser: members with roles and last sign-in, change a role, pending invitations with
their link, revoke one (issue 15, item 2), at 1366 and 390 px."""

import re

from playwright.sync_api import expect

from bulkapp.extensions import db
from bulkapp.models import Invitation, User
from bulkapp.services.accounts.users import create_user
from tests.conftest import PASSWORD
from tests.e2e.conftest import screenshot, sign_in


def shoot(page, name: str) -> None:
    for width in (1366, 390):
        page.set_viewport_size({"width": width, "height": 900})
        screenshot(page, f"{name}-{width}")
        assert page.evaluate("document.documentElement.scrollWidth") <= width, f"{name} scrolls sideways at {width}"
    page.set_viewport_size({"width": 1280, "height": 860})


def test_change_a_role_and_revoke_an_invitation(page, user):
    mona = create_user("mona@a.example", PASSWORD, name="Mona Wanjiku", client_id=user.client_id)
    db.session.commit()
    sign_in(page, user)
    page.goto("/settings/team")
    expect(page.get_by_role("heading", name="Team", exact=True)).to_be_visible()
    owner_row = page.locator(f"#member-{user.id}")
    expect(owner_row).to_contain_text("Owner")
    expect(owner_row).not_to_contain_text("—")  # signed in a moment ago

    page.get_by_label("Role of Mona Wanjiku").select_option("agent")
    page.locator(f"#member-{mona.id}").get_by_role("button", name="Change").click()
    expect(page.get_by_text("Mona Wanjiku is now Agent.")).to_be_visible()
    db.session.rollback()  # a fresh read of what the server committed
    assert db.session.get(User, mona.id).tenant_role == "agent"

    page.get_by_label("Their name").fill("Juma Otieno")
    page.get_by_label("Their email").fill("juma@a.example")
    page.locator("#team-invite").get_by_label("Role").select_option("manager")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_label("Invitation link", exact=True)).to_have_value(re.compile(r"/invite/"))
    db.session.rollback()
    invitation = db.session.query(Invitation).filter_by(email="juma@a.example").one()
    pending = page.locator(f"#invitation-{invitation.id}")
    expect(pending).to_contain_text("Juma Otieno")
    expect(pending).to_contain_text("Manager")
    shoot(page, "team")

    pending.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("The invitation to juma@a.example was withdrawn")).to_be_visible()
    expect(page.locator(f"#invitation-{invitation.id}")).to_have_count(0)
    expect(page.get_by_text("No pending invitations.")).to_be_visible()
    shoot(page, "team-revoked")
