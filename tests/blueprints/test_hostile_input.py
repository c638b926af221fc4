"""Input no database column can hold gets a clear answer, never a server error, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Contact


def test_ids_beyond_an_integer_column_are_simply_not_found(client, login, user):
    login(user)
    for path in ("/contacts/2147483648/edit", "/contacts/99999999999999999999/row", "/inbox/2147483648"):
        response = client.get(path)
        assert response.status_code == 404, path
    assert client.get("/contacts/2147483647/edit").status_code == 404  # the largest id that could exist


def test_a_nul_character_in_a_form_is_refused_and_nothing_is_saved(client, login, user):
    login(user)
    response = client.post("/contacts/", data={"new-name": "Wan\x00jiru", "new-contact": "0712345678"})
    assert response.status_code == 400
    assert "cannot contain" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 0


def test_a_nul_character_in_the_query_string_is_refused(client, login, user):
    login(user)
    response = client.get("/contacts/?q=a%00b")
    assert response.status_code == 400
    assert client.get("/contacts/?q=ab").status_code == 200
