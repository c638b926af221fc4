"""The dashboard's range switch swaps the charts in place."""

from datetime import timedelta

from playwright.sync_api import expect

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Message
from tests.e2e.conftest import screenshot, sign_in


def test_dashboard_range_switch(page, user):
    now = utcnow()
    statuses = ("delivered", "delivered", "delivered", "failed", "sent")
    db.session.add_all(
        Message(client_id=user.client_id, recipient="+254712345678", body="x", status=status,
                created_at=now - timedelta(days=day, hours=i))
        for day in range(0, 60, 3) for i, status in enumerate(statuses)
    )  # fmt: skip
    db.session.commit()
    sign_in(page, user)
    expect(page.locator("#dashboard-charts h2")).to_have_text("Last 30 days")
    thirty = page.locator("#dashboard-charts rect.bar").count()
    page.get_by_role("button", name="7 days").click()
    expect(page.locator("#dashboard-charts h2")).to_have_text("Last 7 days")
    assert page.locator("#dashboard-charts rect.bar").count() < thirty
    page.get_by_role("button", name="90 days").click()
    expect(page.locator("#dashboard-charts h2")).to_have_text("Last 90 days")
    expect(page.get_by_role("button", name="90 days")).to_have_attribute("aria-pressed", "true")
    screenshot(page, "dashboard-90-days")
