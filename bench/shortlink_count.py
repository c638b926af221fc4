"""What choosing the reply-code length costs: one uncached ``shortlinks.live_link_count()`` (COUNT of links not
expired) over ``--links`` rows, half of them expired, against a primary-key lookup of one link in the same run.
A process counts at most once per SHORTLINK_COUNT_SECONDS (60), so this is paid about once a minute per
process, not per message. SQLite file by default; BENCH_DATABASE_URL for PostgreSQL. Prints one JSON line.

    .venv/bin/python bench/shortlink_count.py [--links 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_TMP = Path(tempfile.mkdtemp(prefix="bulkapp-bench-"))
os.environ.setdefault("BULKAPP_INSTANCE_DIR", str(_TMP / "instance"))


def _median_ms(action, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--links", type=int, default=1_000_000)
    args = parser.parse_args()

    import sqlalchemy as sa

    from bulkapp import create_app
    from bulkapp.columns import utcnow
    from bulkapp.config import normalise_database_url
    from bulkapp.extensions import db
    from bulkapp.models import ShortLink
    from bulkapp.services.accounts.users import create_client
    from bulkapp.services.billing import pricing
    from bulkapp.services.messaging import shortlinks

    url = normalise_database_url(os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{_TMP / 'bench.db'}")
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SHORTLINK_COUNT_SECONDS": 0, "BASE_URL": "http://b"})
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.create_all()
        client, _key = create_client("Bench")
        db.session.commit()
        now = utcnow()
        for start in range(0, args.links, 50_000):
            rows = [
                {
                    "client_id": client.id,
                    "code": f"{n:08d}",
                    "original_url": "x",
                    "clicks": 0,
                    "expires_at": now + timedelta(days=1 if n % 2 else -1),
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(start, min(start + 50_000, args.links))
            ]
            db.session.execute(sa.insert(ShortLink), rows)
            db.session.commit()
        count_ms = _median_ms(shortlinks.live_link_count)
        live = shortlinks.live_link_count()
        lookup_ms = _median_ms(lambda: db.session.scalar(sa.select(ShortLink.id).where(ShortLink.code == "00000001")))
        print(
            json.dumps(
                {
                    "bench": "shortlink_count",
                    "database": db.engine.dialect.name,
                    "links": args.links,
                    "live": live,
                    "code_length": pricing.reply_code_length(live),
                    "count_ms": count_ms,
                    "one_link_lookup_ms": lookup_ms,
                    "count_per_minute_share_of_one_core": round(count_ms / 60_000, 6),
                }
            )
        )
        db.session.remove()
        db.drop_all()


if __name__ == "__main__":
    main()
