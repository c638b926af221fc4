"""Contacts CSV import throughput: 100,000 rows through the real upload -> mapping -> import job path.

Compared, in the same run and on the same database, with a raw SQLAlchemy Core executemany INSERT of the rows
the import ends up storing. Runs on a fresh SQLite file, and also on PostgreSQL when BENCH_DATABASE_URL (or
TEST_DATABASE_URL) is set. Prints one JSON line.

    .venv/bin/python bench/contact_import.py [--rows N] [--repeat R]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
_TMP = Path(tempfile.mkdtemp(prefix="bulkapp-bench-"))
os.environ.setdefault("BULKAPP_INSTANCE_DIR", str(_TMP / "instance"))

import sqlalchemy as sa  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

from bulkapp import create_app  # noqa: E402
from bulkapp.config import normalise_database_url  # noqa: E402
from bulkapp.extensions import db  # noqa: E402

FORMS = ("0{n}", "{n}", "254{n}", "+254 {a} {b} {c}", "0{a}-{b}-{c}")
INVALID = ("020 123 4567", "12345", "hello", "", "0712")


def make_csv(rows: int, seed: int = 6) -> tuple[bytes, int]:
    """A CSV of ``rows`` contacts in mixed Kenyan number formats: ~3% invalid, ~5% repeated numbers."""
    rng = random.Random(seed)
    out = io.StringIO()
    out.write("Name,Phone,Department,Order ID,Town\n")
    seen: list[str] = []
    invalid = 0
    for i in range(rows):
        roll = rng.random()
        if roll < 0.03:
            number = rng.choice(INVALID)
            invalid += 1
        elif roll < 0.08 and seen:
            number = rng.choice(seen)
        else:
            national = f"7{rng.randrange(10**8):08d}" if rng.random() < 0.9 else f"11{rng.randrange(10**7):07d}"
            seen.append(national)
            form = rng.choice(FORMS)
            number = form.format(n=national, a=national[:3], b=national[3:6], c=national[6:])
        department = rng.choice(("Customers", "Suppliers", "VIP", ""))
        out.write(f"Customer {i},{number},{department},A-{i},{rng.choice(('Nairobi', 'Mombasa', 'Kisumu'))}\n")
    return out.getvalue().encode(), invalid


def _round(data: bytes) -> dict:
    """One import of ``data`` for a fresh tenant, then the raw insert of the rows it stored for another one."""
    from bulkapp.jobs.contacts import import_contacts
    from bulkapp.models import Client, Contact
    from bulkapp.services.accounts.users import create_client
    from bulkapp.services.contacts import csv_files as contact_csv
    from bulkapp.services.contacts import importing as contact_import

    suffix = os.urandom(3).hex()
    importer, _ = create_client(f"bench-import-{suffix}", balance="0")
    raw, _ = create_client(f"bench-raw-{suffix}", balance="0")
    db.session.commit()
    try:
        started = time.perf_counter()
        imp = contact_import.start_import(importer.id, None, "bench.csv", io.BytesIO(data))
        db.session.commit()
        contact_import.apply_mapping(importer.id, imp.id, contact_csv.roles_from_mapping(imp.mapping, len(imp.columns)))
        db.session.commit()
        outcome = import_contacts(imp.id)
        import_seconds = time.perf_counter() - started
        db.session.refresh(imp)
        assert outcome == "done", (outcome, imp.error_message)

        columns = [Contact.name, Contact.contact, Contact.department, Contact.fields]
        stored = db.session.execute(sa.select(*columns).where(Contact.client_id == importer.id)).all()
        now = imp.created_at
        rows = [
            {
                "client_id": raw.id,
                "name": r.name,
                "contact": r.contact,
                "department": r.department,
                "fields": r.fields,
                "total_messages": 0,
                "created_at": now,
                "updated_at": now,
            }
            for r in stored
        ]
        db.session.commit()
        started = time.perf_counter()
        with db.engine.begin() as conn:
            conn.execute(Contact.__table__.insert(), rows)
        raw_seconds = time.perf_counter() - started
        return {
            "input_rows": imp.total_rows,
            "stored": len(rows),
            "created": imp.created_count,
            "merged": imp.merged_count,
            "failed": imp.failed_count,
            "import_seconds": import_seconds,
            "raw_seconds": raw_seconds,
        }
    finally:
        db.session.rollback()
        db.session.execute(sa.delete(Client).where(Client.id.in_([importer.id, raw.id])))
        db.session.commit()


def measure(url: str, data: bytes, repeat: int) -> dict:
    """Best of ``repeat`` rounds on one database (the fastest round is the least disturbed by other load)."""
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "bench",
            "FERNET_KEYS": Fernet.generate_key().decode(),
            "JOBS_MODE": "inline",
            "BASE_URL": "http://localhost",
        }
    )
    with app.app_context():
        db.create_all()
        try:
            rounds = [_round(data) for _ in range(repeat)]
        finally:
            db.session.remove()
            db.engine.dispose()
    first = rounds[0]
    import_seconds = min(r["import_seconds"] for r in rounds)
    raw_seconds = min(r["raw_seconds"] for r in rounds)
    result = {key: first[key] for key in ("input_rows", "stored", "created", "merged", "failed")}
    result.update(
        import_seconds=round(import_seconds, 3),
        import_rows_per_s=round(first["input_rows"] / import_seconds),
        raw_insert_seconds=round(raw_seconds, 3),
        raw_insert_rows_per_s=round(first["stored"] / raw_seconds),
    )
    result["ratio_to_raw_insert"] = round(result["import_rows_per_s"] / result["raw_insert_rows_per_s"], 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds per database; the best one is reported")
    args = parser.parse_args()
    data, invalid = make_csv(args.rows)
    figures: dict = {
        "bench": "contact_import",
        "rows": args.rows,
        "invalid_rows": invalid,
        "bytes": len(data),
        "repeat": args.repeat,
    }
    figures["sqlite"] = measure(f"sqlite:///{_TMP / 'bench.db'}", data, args.repeat)
    postgres = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if postgres:
        figures["postgresql"] = measure(normalise_database_url(postgres), data, args.repeat)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
