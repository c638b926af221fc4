"""Campaign dispatch: 20,000 SMS through the Onfon simulator (tests/simulators/onfon.py) with 2 RQ workers.

Reports messages/s from the moment the chunk jobs are enqueued until no message is pending or sending, and the
ratio to the simulator's own capacity measured in the same run with direct HTTP calls of the same batch size
(one plain client, one request at a time). Runs on a fresh SQLite file, and also on PostgreSQL when
BENCH_DATABASE_URL (or TEST_DATABASE_URL) is set. Needs Redis (REDIS_URL, database 11 is used). One JSON line.

    .venv/bin/python bench/dispatch.py [--messages N] [--workers W]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_TMP = Path(tempfile.mkdtemp(prefix="bulkapp-bench-"))
os.environ.setdefault("BULKAPP_INSTANCE_DIR", str(_TMP / "instance"))

import sqlalchemy as sa  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

from bench.campaign_fanout import redis_url  # noqa: E402
from bulkapp import create_app  # noqa: E402
from bulkapp.config import normalise_database_url  # noqa: E402
from bulkapp.extensions import db  # noqa: E402
from tests.simulators.onfon import OnfonSimulator  # noqa: E402

FERNET = Fernet.generate_key().decode()


def settings(url: str, redis: str) -> dict:
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": "bench",
        "FERNET_KEYS": FERNET,
        "JOBS_MODE": "rq",
        "REDIS_URL": redis,
        "BASE_URL": "https://bulk.example",
        "EMBEDDED_SCHEDULER": False,
    }


def setup(sim: OnfonSimulator, messages: int) -> tuple[int, int, list[tuple[int, int]], int]:
    """A live tenant with an Onfon channel on the simulator and a launched transactional campaign (not timed)."""
    from bulkapp.columns import utcnow
    from bulkapp.models import Channel, Client, Contact
    from bulkapp.providers.registry import get_provider
    from bulkapp.services.accounts.users import create_client
    from bulkapp.services.campaigns import drafts as campaigns
    from bulkapp.services.campaigns import launch as campaign_launch
    from bulkapp.services.campaigns.recipients import clean_selection

    client, _ = create_client(f"bench-dispatch-{os.urandom(3).hex()}", balance=str(messages * 3), test_mode=False)
    db.session.add(
        Channel(client_id=client.id, name="sms", provider="onfon", credentials=sim.credentials, config=sim.config())
    )
    db.session.commit()
    now = utcnow()
    contacts = [
        {
            "client_id": client.id,
            "contact": f"+25471{n:05d}00",
            "fields": {},
            "total_messages": 0,
            "created_at": now,
            "updated_at": now,
        }
        for n in range(messages)
    ]  # fmt: skip  ("00": delivered, no failure magic in the simulator)
    db.session.execute(sa.insert(Contact.__table__), contacts)
    data = campaigns.DraftInput(
        name="Dispatch", channel="sms", kind="transactional", sender_id=sorted(sim.senders)[0],
        message="Your order is ready for collection.", template_id=None, selection=clean_selection(all_contacts=True),
    )  # fmt: skip
    campaign = campaigns.save_draft(client.id, data)
    db.session.commit()
    result = campaign_launch.launch_campaign(client.id, campaign.id)
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        # As autovacuum would have done by then: fresh statistics, and no dead rows left by earlier benchmarks
        # (campaign_fanout deletes a million rows) for the dispatch queries to wade through.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("messages", "events", "campaigns"):
                conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
    batch = get_provider("onfon", sim.credentials, sim.config()).preferred_batch_size
    assert db.session.get(Client, client.id).is_test_mode is False
    return client.id, campaign.id, result.ranges, batch


def open_messages(campaign_id: int) -> int:
    """Messages still pending or sending; fails loudly (instead of waiting forever) when a chunk job failed."""
    from bulkapp.extensions import rq
    from bulkapp.models import Message

    failed = rq.queue("default").failed_job_registry
    if failed.count:
        job = failed.get_job_ids()[0]
        raise RuntimeError(f"chunk job {job} failed:\n{rq.queue('default').fetch_job(job).exc_info}")
    count = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Message)
        .where(Message.campaign_id == campaign_id, Message.status.in_(("pending", "sending")))
    )
    db.session.rollback()
    return count


def cleanup(client_id: int) -> None:
    """Remove the tenant (its rows cascade): a PostgreSQL bench database is reused, and the simulator's
    message ids start again at every run."""
    from bulkapp.models import Client

    db.session.rollback()
    db.session.execute(sa.delete(Client).where(Client.id == client_id))
    db.session.commit()


def start_workers(url: str, redis: str, count: int) -> list[subprocess.Popen]:
    env = dict(
        os.environ,
        DATABASE_URL=url,
        REDIS_URL=redis,
        SECRET_KEY="bench",
        FERNET_KEYS=FERNET,
        BASE_URL="https://bulk.example",
        PYTHONPATH=str(ROOT),
    )
    rq = Path(sys.executable).with_name("rq")
    return [
        subprocess.Popen(
            [
                str(rq),
                "worker",
                "--worker-class",
                "bulkapp.jobs.worker.PreloadedWorker",
                "--url",
                redis,
                "--name",
                f"bench-dispatch-{os.getpid()}-{n}",
                "default",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for n in range(count)
    ]


def measure(url: str, redis: str, messages: int, workers: int) -> dict:
    from bulkapp.extensions import rq
    from bulkapp.jobs.campaigns import enqueue_chunks
    from bulkapp.models import Campaign, Message

    app = create_app(settings(url, redis))
    with OnfonSimulator(balance=Decimal(10**9)) as sim, app.app_context():
        db.create_all()
        client_id, campaign_id, ranges, batch = setup(sim, messages)
        try:
            capacity = sim.measure_capacity(total=min(messages, 20_000), batch_size=batch)
            queue = rq.queue("default")
            queue.empty()
            for job_id in queue.failed_job_registry.get_job_ids():
                queue.failed_job_registry.remove(job_id, delete_job=True)
            procs = start_workers(url, redis, workers)
            try:
                time.sleep(4)  # let the workers import the app before the clock starts
                started = time.perf_counter()
                enqueue_chunks(client_id, campaign_id, ranges)
                while open_messages(campaign_id):
                    time.sleep(0.05)
                elapsed = time.perf_counter() - started
            finally:
                for proc in procs:
                    proc.send_signal(signal.SIGTERM)
                for proc in procs:
                    proc.wait(timeout=60)
            counts = dict(
                db.session.execute(
                    sa.select(Message.status, sa.func.count())
                    .where(Message.campaign_id == campaign_id)
                    .group_by(Message.status)
                ).all()
            )
            status = db.session.get(Campaign, campaign_id).status
            accepted = len(sim.submissions)
        finally:
            cleanup(client_id)
        db.session.remove()
        db.engine.dispose()
    total = sum(counts.values())
    rate = total / elapsed
    return {
        "messages": total,
        "workers": workers,
        "batch_size": batch,
        "statuses": counts,
        "campaign_status": status,
        "provider_accepted": accepted,
        "seconds": round(elapsed, 2),
        "messages_per_s": round(rate),
        "simulator_capacity_per_s": round(capacity),
        "ratio_to_capacity": round(rate / capacity, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    redis = redis_url()
    figures: dict = {"bench": "dispatch", "messages": args.messages}
    if redis is None:
        figures["skipped"] = "Redis is not reachable (set REDIS_URL)"
        print(json.dumps(figures))
        return
    databases = {"sqlite": f"sqlite:///{_TMP / 'bench.db'}"}
    postgres = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if postgres:
        databases["postgresql"] = normalise_database_url(postgres)
    for name, url in databases.items():
        figures[name] = measure(url, redis, args.messages, args.workers)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
