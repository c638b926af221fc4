"""Campaign fan-out: launch a 100,000-recipient SMS campaign on the sandbox until every message row (with its
reply link) is persisted, the wallet hold taken and the chunk jobs enqueued on RQ.

Compared, in the same run and on the same database, with a raw SQLAlchemy Core executemany INSERT of the same
100,000 message rows. Memory: the peak RSS growth of a fresh process launching 10,000 and 1,000,000 recipients.
Runs on a fresh SQLite file, and also on PostgreSQL when BENCH_DATABASE_URL (or TEST_DATABASE_URL) is set. Chunk
jobs go to Redis database 11 of REDIS_URL (default redis://127.0.0.1:6379) and are removed afterwards. Prints one
JSON line.

    .venv/bin/python bench/campaign_fanout.py [--recipients N] [--memory 10000,1000000] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_TMP = Path(os.environ.get("BENCH_TMP") or tempfile.mkdtemp(prefix="bulkapp-bench-"))
os.environ.setdefault("BULKAPP_INSTANCE_DIR", str(_TMP / "instance"))
FERNET = os.environ.get("BENCH_FERNET_KEY")

import sqlalchemy as sa  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

from bulkapp import create_app  # noqa: E402
from bulkapp.config import normalise_database_url  # noqa: E402
from bulkapp.extensions import db  # noqa: E402

CONTACT_CHUNK = 20_000


def redis_url() -> str | None:
    base = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    url = base.rsplit("/", 1)[0] + "/11"
    try:
        from redis import Redis

        Redis.from_url(url).ping()
    except Exception:  # noqa: BLE001 - no Redis: chunk ranges are collected instead of enqueued
        return None
    return url


def make_app(url: str):
    redis = redis_url()
    settings = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": "bench",
        "FERNET_KEYS": FERNET or Fernet.generate_key().decode(),
        "JOBS_MODE": "rq" if redis else "inline",
        "REDIS_URL": redis,
        "BASE_URL": "https://bulk.example",
        "EMBEDDED_SCHEDULER": False,
    }
    return create_app(settings)


def setup_campaign(recipients: int) -> tuple[int, int]:
    """A funded test-mode tenant with ``recipients`` contacts and a draft to all of them (not timed)."""
    from bulkapp.columns import utcnow
    from bulkapp.models import Contact
    from bulkapp.services.accounts.users import create_client
    from bulkapp.services.campaigns import drafts as campaigns
    from bulkapp.services.campaigns.recipients import clean_selection

    client, _ = create_client(f"bench-fanout-{os.urandom(3).hex()}", balance=str(recipients * 2), price_per_unit="0.80")
    db.session.commit()
    now = utcnow()
    for start in range(0, recipients, CONTACT_CHUNK):
        rows = [
            {
                "client_id": client.id,
                "name": f"Customer {n}",
                "contact": f"+2547{n:08d}",
                "department": "Customers",
                "fields": {},
                "total_messages": 0,
                "created_at": now,
                "updated_at": now,
            }
            for n in range(start, min(recipients, start + CONTACT_CHUNK))
        ]
        db.session.execute(sa.insert(Contact.__table__), rows)
        db.session.commit()
    data = campaigns.DraftInput(
        name="Fan-out", channel="sms", kind="transactional", sender_id=None,
        message="Karibu! Our new branch opens on Monday with 20% off everything.", template_id=None,
        selection=clean_selection(all_contacts=True),
    )  # fmt: skip
    campaign = campaigns.save_draft(client.id, data)
    db.session.commit()
    return client.id, campaign.id


def launch(client_id: int, campaign_id: int) -> tuple[float, int, int]:
    """Timed: launch, commit, enqueue the chunk jobs. Returns (seconds, messages, chunk jobs)."""
    from bulkapp.extensions import rq
    from bulkapp.jobs.campaigns import enqueue_chunks
    from bulkapp.services.campaigns import launch as campaign_launch

    started = time.perf_counter()
    result = campaign_launch.launch_campaign(client_id, campaign_id)
    db.session.commit()
    if rq.backend().mode == "rq":
        enqueue_chunks(client_id, campaign_id, result.ranges)
    seconds = time.perf_counter() - started
    if rq.backend().mode == "rq":
        rq.queue("default").empty()
    return seconds, result.recipients, len(result.ranges)


def raw_insert(campaign_id: int) -> float:
    """Timed: the same message rows inserted again with one Core executemany (another campaign id)."""
    from bulkapp.models import Campaign, Message

    table = Message.__table__
    columns = [c for c in table.columns if c.name != "id"]
    rows = [dict(r._mapping) for r in db.session.execute(sa.select(*columns).where(table.c.campaign_id == campaign_id))]
    copy = Campaign(client_id=rows[0]["client_id"], name="raw copy", recipients={})
    db.session.add(copy)
    db.session.flush()
    copy_id = copy.id
    db.session.commit()  # no transaction of this session stays open during the timed insert
    for row in rows:
        row["campaign_id"] = copy_id
    started = time.perf_counter()
    with db.engine.begin() as conn:
        conn.execute(table.insert(), rows)
    return time.perf_counter() - started


def cleanup(client_id: int) -> None:
    from bulkapp.models import Campaign, Client, Contact, Message, ShortLink, WalletTransaction

    db.session.rollback()
    for model in (ShortLink, Message, Campaign, Contact, WalletTransaction):
        db.session.execute(sa.delete(model).where(model.client_id == client_id))
    db.session.execute(sa.delete(Client).where(Client.id == client_id))
    db.session.commit()


def measure(url: str, recipients: int, repeat: int) -> dict:
    app = make_app(url)
    rounds = []
    with app.app_context():
        db.create_all()
        for _ in range(repeat):
            client_id, campaign_id = setup_campaign(recipients)
            try:
                seconds, messages, jobs = launch(client_id, campaign_id)
                raw = raw_insert(campaign_id)
                rounds.append((seconds, raw, messages, jobs))
            finally:
                cleanup(client_id)
        db.session.remove()
        db.engine.dispose()
    seconds = min(r[0] for r in rounds)
    raw = min(r[1] for r in rounds)
    return {
        "messages": rounds[0][2],
        "chunk_jobs": rounds[0][3],
        "enqueued_on": "rq" if redis_url() else "none (no Redis)",
        "launch_seconds": round(seconds, 3),
        "launch_messages_per_s": round(rounds[0][2] / seconds),
        "raw_insert_seconds": round(raw, 3),
        "ratio_to_raw_insert": round(seconds / raw, 2),
    }


def _status_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process; unlike ru_maxrss, VmHWM starts afresh at exec."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def child(url: str, client_id: int, campaign_id: int) -> None:
    """In a fresh process: RSS before the launch and the peak during it."""
    app = make_app(url)
    with app.app_context():
        db.session.execute(sa.text("SELECT 1"))
        before = _status_mb("VmRSS")
        seconds, messages, jobs = launch(client_id, campaign_id)
        peak = _status_mb("VmHWM")
        print(json.dumps({
            "messages": messages, "seconds": round(seconds, 2), "rss_before_mb": round(before, 1),
            "peak_rss_mb": round(peak, 1), "growth_mb": round(peak - before, 1),
        }))  # fmt: skip


def memory(url: str, sizes: list[int]) -> dict:
    """Peak RSS growth of a fresh process launching each size (set up beforehand in this process)."""
    figures = {}
    app = make_app(url)
    for size in sizes:
        with app.app_context():
            db.create_all()
            client_id, campaign_id = setup_campaign(size)
            db.session.remove()
        env = dict(os.environ, BENCH_TMP=str(_TMP), BENCH_FERNET_KEY=app.config["FERNET_KEYS"])
        try:
            out = subprocess.run(
                [sys.executable, __file__, "--child", url, str(client_id), str(campaign_id)],
                capture_output=True, text=True, env=env, timeout=3600, check=True,
            ).stdout  # fmt: skip
            figures[str(size)] = json.loads(out.strip().splitlines()[-1])
        finally:
            with app.app_context():
                cleanup(client_id)
                db.session.remove()
    with app.app_context():
        db.engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--memory", default="10000,100000,1000000", help="sizes for the memory figures ('' to skip)")
    parser.add_argument("--child", nargs=3, metavar=("URL", "CLIENT", "CAMPAIGN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), int(args.child[2]))
        return
    sizes = [int(s) for s in args.memory.split(",") if s.strip()]
    databases = {"sqlite": f"sqlite:///{_TMP / 'bench.db'}"}
    postgres = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if postgres:
        databases["postgresql"] = normalise_database_url(postgres)
    figures: dict = {"bench": "campaign_fanout", "recipients": args.recipients, "repeat": args.repeat}
    for name, url in databases.items():
        figures[name] = measure(url, args.recipients, args.repeat)
        if sizes:
            figures[name]["memory"] = memory(url, sizes)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
