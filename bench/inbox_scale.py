"""Inbox at scale: one tenant with 1,000,000 messages in 100,000 conversations against one with 1,000 messages.

Seeds both tenants with Core bulk inserts, then times real requests through the app (test client, so the
figures are server time: routing, queries, templates) for the inbox list, a search, opening a conversation and
the dashboard page, and prints p50/p95 per tenant and the big/small ratio as one JSON line. Uses
BENCH_DATABASE_URL (or TEST_DATABASE_URL: PostgreSQL) when set, else a fresh SQLite file. The tenants it made
are deleted afterwards, unless ``--reuse``: then they keep fixed names, stay for the next run and are seeded only
when missing (seeding a million messages takes minutes; iterate on a kept database).

    .venv/bin/python bench/inbox_scale.py [--messages 1000000] [--conversations 100000] [--requests 60] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
_TMP = Path(tempfile.mkdtemp(prefix="bulkapp-bench-"))
os.environ.setdefault("BULKAPP_INSTANCE_DIR", str(_TMP / "instance"))

import sqlalchemy as sa  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

from bulkapp import create_app  # noqa: E402
from bulkapp.columns import utcnow  # noqa: E402
from bulkapp.config import normalise_database_url  # noqa: E402
from bulkapp.extensions import db  # noqa: E402

FIRST = ("Wanjiru", "Achieng", "Kamau", "Otieno", "Njeri", "Mwangi", "Akinyi", "Kiprop", "Wambui", "Ouma", "Chebet")
LAST = ("Kamau", "Odhiambo", "Mutua", "Kariuki", "Wafula", "Kiptoo", "Njoroge", "Omondi", "Maina", "Barasa")
WORDS = [
    "habari",
    "order",
    "ready",
    "pick-up",
    "shop",
    "Westlands",
    "price",
    "maize",
    "flour",
    "sugar",
    "delivery",
    "tomorrow",
    "asante",
    "sana",
    "please",
    "call",
    "me",
    "when",
    "payment",
    "M-Pesa",
    "received",
    "thank",
    "you",
    "karibu",
    "tena",
    "offer",
    "today",
    "only",
    "discount",
    "stock",
    "available",
]
RARE = "Githurai"  # the search term: in about 1 message in 2,000
PASSWORD = "bench-password-123"
CHUNK = 20_000


def _body(rng: random.Random, i: int) -> str:
    words = rng.choices(WORDS, k=rng.randint(5, 14))
    if i % 2000 == 7:
        words.insert(rng.randrange(len(words)), RARE)
    return " ".join(words)


def seed(client_id: int, messages: int, conversations: int, rng: random.Random) -> None:
    """``conversations`` contacts and conversations and ``messages`` messages spread over 90 days, in chunks."""
    from bulkapp.models import Contact, Conversation, Message

    now = utcnow()
    per = messages // conversations
    span = timedelta(days=90).total_seconds()
    base = 700_000_000 + client_id * 1_000_000 % 99_000_000
    with db.engine.begin() as conn:
        for start in range(0, conversations, CHUNK):
            conn.execute(
                sa.insert(Contact),
                [
                    {
                        "client_id": client_id,
                        "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                        "contact": f"+254{base + i}",
                        "fields": {},
                        "total_messages": per,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in range(start, min(start + CHUNK, conversations))
                ],
            )
    with db.engine.begin() as conn:
        contacts = conn.execute(
            sa.select(Contact.id, Contact.contact).where(Contact.client_id == client_id).order_by(Contact.id)
        ).all()
    # Conversation k's messages are at times spread over the 90 days; its last one sets last_message_at.
    last_at = [now - timedelta(seconds=rng.random() * span) for _ in contacts]
    with db.engine.begin() as conn:
        for start in range(0, len(contacts), CHUNK):
            rows = []
            for k in range(start, min(start + CHUNK, len(contacts))):
                roll = rng.random()
                status = "open" if roll < 0.8 else "closed" if roll < 0.95 else "archived"
                rows.append(
                    {
                        "client_id": client_id,
                        "contact_id": contacts[k].id,
                        "contact_identifier": contacts[k].contact,
                        "channel": "whatsapp" if k % 5 == 0 else "sms",
                        "status": status,
                        "unread_count": 1 if k % 20 == 0 else 0,
                        "last_message_preview": "asante sana, see you tomorrow",
                        "last_message_direction": "inbound",
                        "last_message_at": last_at[k],
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            conn.execute(sa.insert(Conversation), rows)
    with db.engine.begin() as conn:
        conversation_ids = conn.execute(
            sa.select(Conversation.id, Conversation.contact_identifier, Conversation.channel)
            .where(Conversation.client_id == client_id)
            .order_by(Conversation.id)
        ).all()
    with db.engine.begin() as conn:
        rows = []
        for i in range(messages):
            k = i % len(conversation_ids)
            step = i // len(conversation_ids)  # 0 .. per-1: the last step is the newest message
            conv = conversation_ids[k]
            inbound = step % 2 == 1
            at = last_at[k] - timedelta(hours=6 * (per - 1 - step))
            rows.append(
                {
                    "client_id": client_id,
                    "conversation_id": conv.id,
                    "channel": conv.channel,
                    "direction": "inbound" if inbound else "outbound",
                    "provider": "sandbox",
                    "sender": conv.contact_identifier if inbound else "BENCH",
                    "recipient": "BENCH" if inbound else conv.contact_identifier,
                    "body": _body(rng, i),
                    "status": "received" if inbound else "delivered",
                    "segments": 1,
                    "cost": Decimal("0") if inbound else Decimal("0.80"),
                    "metadata": {},
                    "is_read": True,
                    "attempts": 0 if inbound else 1,
                    "created_at": at,
                    "updated_at": at,
                }
            )
            if len(rows) == CHUNK:
                conn.execute(Message.__table__.insert(), rows)
                rows = []
        if rows:
            conn.execute(Message.__table__.insert(), rows)
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE contacts, conversations, messages")  # as autovacuum would
    else:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


def _ensure_indexes() -> None:
    """create_all makes missing tables only; an older database also gets the inbox's newer indexes."""
    from bulkapp.models import Contact, Conversation, Message

    with db.engine.begin() as conn:
        for model in (Contact, Conversation, Message):
            for index in model.__table__.indexes:
                index.create(conn, checkfirst=True)


def _delete_data(client_ids: list[int]) -> None:
    from bulkapp.models import Contact, Conversation, Message

    for model in (Message, Conversation, Contact):
        db.session.execute(sa.delete(model).where(model.client_id.in_(client_ids)))
    db.session.commit()


def _summary(times: list[float]) -> dict:
    times = sorted(times)
    return {"p50": round(statistics.median(times), 2), "p95": round(times[int(len(times) * 0.95) - 1], 2)}


def _tenant_client(app, email: str, client_id: int, requests: int, rng: random.Random):
    """A signed-in test client and the URLs it requests per case."""
    from bulkapp.models import Conversation

    with app.app_context():  # requests must not share this context (its g would hold the last user)
        ids = db.session.scalars(
            sa.select(Conversation.id).where(Conversation.client_id == client_id, Conversation.status == "open")
        ).all()
        db.session.remove()
    client = app.test_client()
    assert client.post("/login", data={"email": email, "password": PASSWORD}).status_code == 302
    cases = {
        "list": ["/inbox/"] * requests,
        "search": [f"/inbox/?q={RARE}"] * requests,
        "open": [f"/inbox/{rng.choice(ids)}" for _ in range(requests)],
        "dashboard": ["/dashboard"] * requests,
    }
    for urls in cases.values():  # warm caches and the query planner once
        client.get(urls[0])
    return client, cases


def measure(tenants: list[tuple], requests: int) -> list[dict]:
    """Time every case for every tenant, alternating tenants request by request so that background load on a
    shared machine hits both alike (the ratio is what is compared)."""
    results: list[dict] = [{} for _ in tenants]
    for case in tenants[0][1]:
        times: list[list[float]] = [[] for _ in tenants]
        for i in range(requests):
            for n, (client, cases) in enumerate(tenants):
                started = time.perf_counter()
                response = client.get(cases[case][i])
                times[n].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (cases[case][i], response.status_code)
        for n in range(len(tenants)):
            results[n][case] = _summary(times[n])
    return results


def run(url: str, messages: int, conversations: int, requests: int, reuse: bool = False) -> dict:
    from bulkapp.models import Client, Message
    from bulkapp.services.accounts.users import create_client, create_user

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "bench",
            "FERNET_KEYS": Fernet.generate_key().decode(),
            "JOBS_MODE": "inline",
            "BASE_URL": "http://localhost",
            "WTF_CSRF_ENABLED": False,
            "RATELIMIT_ENABLED": False,
        }
    )
    rng = random.Random(13)
    suffix = f"reuse-{messages}-{conversations}" if reuse else os.urandom(3).hex()
    with app.app_context():
        db.create_all()
        _ensure_indexes()
        ids = dict(
            db.session.execute(
                sa.select(Client.name, Client.id).where(
                    Client.name.in_([f"bench-big-{suffix}", f"bench-small-{suffix}"])
                )
            ).all()
        )
        if ids:
            big_id, small_id = ids[f"bench-big-{suffix}"], ids[f"bench-small-{suffix}"]
            # The small tenant is seeded last, in one transaction: its messages mean an earlier seeding finished.
            seeded = db.session.scalar(sa.select(Message.id).where(Message.client_id == small_id).limit(1))
            if not seeded:
                _delete_data([big_id, small_id])
        else:
            big, _ = create_client(f"bench-big-{suffix}", balance="0")
            small, _ = create_client(f"bench-small-{suffix}", balance="0")
            db.session.flush()
            create_user(f"big-{suffix}@bench.example", PASSWORD, name="Big", client_id=big.id)
            create_user(f"small-{suffix}@bench.example", PASSWORD, name="Small", client_id=small.id)
            big_id, small_id = big.id, small.id
        db.session.commit()
    try:
        with app.app_context():
            started = time.perf_counter()
            if not (ids and seeded):
                seed(big_id, messages, conversations, rng)
                seed(small_id, max(1, messages // 1000), max(1, conversations // 1000), rng)
            seed_seconds = time.perf_counter() - started
            # The dashboard's hourly roll-ups, as the periodic refresh keeps them in production (rebuilt: the
            # seeded rows are back-dated, which live rows never are).
            from bulkapp.services.insights import hourly_stats as message_stats

            started = time.perf_counter()
            for rollup in message_stats.ROLLUPS:
                message_stats.refresh(rollup, rebuild=True)
                db.session.commit()
            stats_seconds = time.perf_counter() - started
        big_run = _tenant_client(app, f"big-{suffix}@bench.example", big_id, requests, rng)
        small_run = _tenant_client(app, f"small-{suffix}@bench.example", small_id, requests, rng)
        big_times, small_times = measure([big_run, small_run], requests)
    finally:
        with app.app_context():
            db.session.rollback()
            if not reuse:
                _delete_data([big_id, small_id])
                db.session.execute(sa.delete(Client).where(Client.id.in_([big_id, small_id])))
                db.session.commit()
            db.session.remove()
            db.engine.dispose()
    ratio = {
        name: {
            "p50": round(big_times[name]["p50"] / max(small_times[name]["p50"], 0.01), 2),
            "p95": round(big_times[name]["p95"] / max(small_times[name]["p95"], 0.01), 2),
        }
        for name in big_times
    }
    return {
        "database": sa.engine.make_url(url).get_backend_name(),
        "messages": messages,
        "conversations": conversations,
        "seed_seconds": round(seed_seconds, 1),
        "stats_refresh_seconds": round(stats_seconds, 1),
        "big_ms": big_times,
        "small_ms": small_times,
        "ratio": ratio,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--reuse", action="store_true", help="keep the seeded tenants and reuse them next time")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    url = normalise_database_url(url) if url else f"sqlite:///{_TMP / 'bench.db'}"
    result = {"benchmark": "inbox_scale", **run(url, args.messages, args.conversations, args.requests, args.reuse)}
    result["target"] = "p95 <= 50 ms and p95 ratio <= 2 (PostgreSQL)"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
