"""Ten people opening one invitation at once: one account, nine clear "already used" pages (issue 12, item 7)."""

import re
import threading

import requests
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import User
from bulkapp.services.accounts.team import invite_teammate

PEOPLE = 10


def test_concurrent_accepts_of_one_invitation_make_one_account_and_no_error(live_server, tenant):
    token, _taken = invite_teammate(tenant.id, email="juma@a.example", name="Juma")
    db.session.commit()  # the invitation is a row the server reads
    url = f"{live_server}/invite/{token}"
    sessions, forms = [], []
    for _ in range(PEOPLE):  # each browser opens the form first, as people do
        session = requests.Session()
        page = session.get(url, timeout=30)
        assert page.status_code == 200
        csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
        sessions.append(session)
        forms.append({"csrf_token": csrf, "name": "Juma", "password": "juma-password"})
    start = threading.Barrier(PEOPLE)
    answers: list = [None] * PEOPLE

    def accept(i: int) -> None:
        start.wait()
        answers[i] = sessions[i].post(url, data=forms[i], allow_redirects=False, timeout=60)

    threads = [threading.Thread(target=accept, args=(i,)) for i in range(PEOPLE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [302] + [409] * (PEOPLE - 1), statuses
    for answer in answers:
        if answer.status_code == 409:
            assert "This invitation was already used. Sign in instead." in answer.text
    db.session.rollback()
    joined = db.session.scalars(sa.select(User).where(User.email == "juma@a.example")).all()
    assert len(joined) == 1 and joined[0].client_id == tenant.id
