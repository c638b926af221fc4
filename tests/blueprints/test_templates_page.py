"""Templates pages over HTTP: list per channel, create/edit/delete, validation, and the live preview."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Template
from bulkapp.services.messaging.templates import save_template

HX = {"HX-Request": "true"}


def make(tenant, name="Order ready", content="Hi {{name}}, order {{order_id}} is ready.", channel="sms", **kw):
    template = save_template(tenant.id, name=name, content=content, channel=channel, **kw)
    db.session.commit()
    return template


def test_list_page_and_channel_tabs(login, tenant, other_tenant):
    make(tenant)
    make(tenant, name="Karibu", content="Karibu {{1}}", channel="whatsapp", whatsapp_template_id="karibu_v2")
    make(other_tenant, name="Not mine")
    client = login(tenant.test_user)
    page = client.get("/templates/").get_data(as_text=True)
    assert "Order ready" in page and "Karibu" in page and "Not mine" not in page
    assert "{{order_id}}" in page and "karibu_v2" in page
    fragment = client.get("/templates/?channel=whatsapp", headers=HX)
    body = fragment.get_data(as_text=True)
    assert body.lstrip().startswith('<section id="template-list"') and "Karibu" in body and "Order ready" not in body
    empty = client.get("/templates/?channel=email", headers=HX).get_data(as_text=True)
    assert "No Email templates yet." in empty
    assert "Order ready" in client.get("/templates/?channel=fax", headers=HX).get_data(as_text=True)


def test_create_through_the_editor(login, tenant):
    client = login(tenant.test_user)
    page = client.get("/templates/new?channel=whatsapp").get_data(as_text=True)
    assert 'id="template-form"' in page and 'id="template-preview"' in page and 'id="template-samples"' in page
    assert '<option selected value="whatsapp">' in page
    response = client.post(
        "/templates/",
        data={"name": "Order ready", "channel": "sms", "content": "Hi {{name}}, order {{order_id}} is ready."},
        headers=HX,
    )
    assert response.status_code == 204 and response.headers["HX-Redirect"] == "/templates/"
    template = db.session.scalar(sa.select(Template))
    assert (template.client_id, template.variables) == (tenant.id, ["name", "order_id"])
    assert "Template “Order ready” saved." in client.get("/templates/").get_data(as_text=True)


def test_create_without_htmx_redirects(login, tenant):
    client = login(tenant.test_user)
    response = client.post("/templates/", data={"name": "T", "channel": "email", "content": "Dear {{name}}"})
    assert response.status_code == 302 and response.location.endswith("/templates/")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"name": "", "channel": "sms", "content": "x"}, "Give the template a name."),
        ({"name": "T", "channel": "sms", "content": ""}, "Write the message."),
        ({"name": "T", "channel": "fax", "content": "x"}, "Not a valid choice"),
        ({"name": "T", "channel": "sms", "content": "x" * 1601}, "at most 1,600 characters"),
        ({"name": "T", "channel": "sms", "content": "Hi {{first name}}"}, "is not a valid variable"),
        ({"name": "order READY", "channel": "sms", "content": "x"}, "already have a template called"),
        ({"name": "T", "channel": "whatsapp", "content": "x", "whatsapp_template_id": "a b"}, "no spaces"),
    ],
)
def test_editor_errors_re_render_the_form_with_422(login, tenant, data, error):
    make(tenant)
    client = login(tenant.test_user)
    response = client.post("/templates/", data=data, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and body.lstrip().startswith('<form id="template-form"') and error in body
    assert db.session.scalar(sa.select(sa.func.count(Template.id))) == 1


def test_edit_and_update(login, tenant):
    template = make(tenant)
    client = login(tenant.test_user)
    page = client.get(f"/templates/{template.id}").get_data(as_text=True)
    assert "Hi {{name}}, order {{order_id}} is ready." in page and 'value="Wanjiru Kamau"' in page
    response = client.post(
        f"/templates/{template.id}",
        data={"name": "Order ready", "channel": "whatsapp", "content": "Hi {{1}}", "whatsapp_template_id": "order_v1"},
        headers=HX,
    )
    assert response.status_code == 204
    db.session.expire_all()
    saved = db.session.get(Template, template.id)
    assert (saved.channel, saved.variables, saved.whatsapp_template_id) == ("whatsapp", ["1"], "order_v1")


def test_delete_from_the_list_and_from_the_editor(login, tenant):
    first, second = make(tenant).id, make(tenant, name="Second").id
    client = login(tenant.test_user)
    row = client.delete(f"/templates/{first}", headers={**HX, "HX-Target": f"template-row-{first}"})
    assert row.status_code == 200 and row.get_data(as_text=True) == ""
    editor = client.delete(f"/templates/{second}", headers={**HX, "HX-Target": "template-form"})
    assert editor.status_code == 204 and editor.headers["HX-Redirect"] == "/templates/"
    assert db.session.scalar(sa.select(sa.func.count(Template.id))) == 0
    assert client.delete(f"/templates/{first}", headers=HX).status_code == 404


def test_preview_renders_samples_and_counts_segments(login, tenant):
    client = login(tenant.test_user)
    data = {
        "content": "Hi {{name}}, order {{order_id}} is ready.",
        "channel": "sms",
        "sample_name": "Akinyi",
        "known_variables": "name,order_id",
    }
    response = client.post("/templates/preview", data=data, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<section id="template-preview"')
    assert "Hi Akinyi, order [order_id] is ready." in body and "GSM-7" in body
    assert '<strong class="segments">1</strong>' in body and "KSh 0.80 per recipient" in body
    assert "hx-swap-oob" not in body  # the same variables: the sample boxes keep their focus


def test_preview_swaps_the_sample_boxes_when_the_variables_change(login, tenant):
    client = login(tenant.test_user)
    data = {"content": "Habari {{first_name}} 😀 {{town}}", "channel": "sms", "known_variables": "name"}
    body = client.post("/templates/preview", data=data, headers=HX).get_data(as_text=True)
    assert '<section id="template-samples" class="card" hx-swap-oob="true">' in body
    assert 'name="sample_first_name" value="Wanjiru"' in body and 'name="sample_town" value="[town]"' in body
    assert "UCS-2" in body and "Habari Wanjiru 😀 [town]" in body


def test_preview_of_a_cleared_sample_shows_the_tidied_text(login, tenant):
    client = login(tenant.test_user)
    data = {"content": "Hello {{name}}, karibu", "channel": "sms", "sample_name": "", "known_variables": "name"}
    body = client.post("/templates/preview", data=data, headers=HX).get_data(as_text=True)
    assert "Hello, karibu" in body and "No value for <code>{{name}}</code>" in body


def test_preview_of_long_whatsapp_and_empty_text(login, tenant):
    client = login(tenant.test_user)
    long = client.post("/templates/preview", data={"content": "x" * 4100, "channel": "whatsapp"}, headers=HX)
    assert "Too long" in long.get_data(as_text=True) and "4,100 of 4,096 characters" in long.get_data(as_text=True)
    empty = client.post("/templates/preview", data={"content": "", "channel": "sms"}, headers=HX)
    assert "Type a message to see it here." in empty.get_data(as_text=True)
    bad = client.post("/templates/preview", data={"content": "Hi {{first name}}", "channel": "sms"}, headers=HX)
    assert "is not a valid variable" in bad.get_data(as_text=True)


def test_another_tenants_template_is_404(app, tenant, other_tenant):
    from tests.conftest import PASSWORD

    theirs = make(other_tenant, name="Secret").id
    client = app.test_client()
    client.post("/login", data={"email": tenant.test_user.email, "password": PASSWORD})
    for method in ("GET", "POST", "DELETE"):
        assert client.open(f"/templates/{theirs}", method=method, data={"name": "x"}).status_code == 404
    assert db.session.get(Template, theirs).name == "Secret"
