"""`make run PORT=5101` without BASE_URL: every link the app shows or sends follows the port it is served on (API
example, reply links made in the background after the first request, invitations), and the reply page those links
open, at desktop and phone widths."""

from __future__ import annotations

import re
import threading

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from bulkapp import create_app
from bulkapp.extensions import db
from bulkapp.models import ShortLink
from bulkapp.services.messaging import shortlinks
from bulkapp.services.messaging.compose import send_message
from tests.conftest import CSRFClient, test_settings
from tests.e2e.conftest import screenshot, sign_in


@pytest.fixture
def served():
    """The app with BASE_URL unset, on a port of its own (not 5000), as `flask run --port` serves it."""
    from werkzeug.serving import make_server

    application = create_app(test_settings(BASE_URL=None, SQLITE_BEGIN_IMMEDIATE=False))
    application.test_client_class = CSRFClient
    server = make_server("127.0.0.1", 0, application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield application, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    application.extensions.pop(shortlinks._COUNT, None)


@pytest.mark.parametrize("width", [1366, 390])
def test_links_follow_the_port_the_app_is_served_on(browser, served, tenant, user, width):
    application, base = served
    assert not base.endswith(":5000")
    context = browser.new_context(base_url=base, viewport={"width": width, "height": 900}, is_mobile=width < 500)
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        db.session.commit()
        sign_in(page, user)
        page.goto("/settings/api")
        expect(page.locator("pre.wh-code", has_text="curl")).to_contain_text(f"{base}/api/v1/")

        page.goto("/settings/team")
        page.get_by_label("Name").fill("Wanjiru")
        page.get_by_label("Email").fill(f"wanjiru{width}@a.example")
        page.get_by_role("button", name="Send invitation").click()
        expect(page.get_by_label("Invitation link", exact=True)).to_have_value(re.compile(rf"^{re.escape(base)}/"))

        with application.app_context():  # a background job, after the first request
            message = send_message(tenant.id, to="0712345678", body="Your order is ready.", channel="sms")
            db.session.commit()
            code = db.session.scalar(sa.select(ShortLink.code).where(ShortLink.message_id == message.id))
            assert message.body.endswith(f"{base}/x/{code}")
            db.session.remove()
        page.goto("/messages/")
        expect(page.locator("body")).to_contain_text(f"{base}/x/{code}")

        page.goto(f"{base}/x/{code}")
        expect(page.get_by_label("Your message")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        screenshot(page, f"reply-page-{width}")
        page.goto(f"{base}/x/{code}Zz")  # a mistyped link
        expect(page.get_by_role("heading", name="Link not found")).to_be_visible()
        expect(page.locator("body")).to_contain_text("letters and numbers after /x/")
        screenshot(page, f"reply-missing-{width}")
    finally:
        context.close()
