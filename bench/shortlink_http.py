"""Reply-link page throughput: requests/s of GET /x/<code> under gunicorn against a trivial GET /healthz on the
same server in the same run (target ratio >= 0.5).

The server is gunicorn (sync workers, the Procfile's web process) on loopback; the load comes from a second
process (this script's child) with a few threads, each opening a new connection per request as a phone would.
Short phases alternate (healthz, link, healthz, link, ... ``--rounds`` pairs), so drift and other work on a shared
machine hit both; the ratio is the median of the rounds' link/healthz ratios. The rate limits stay
on (memory storage, or with ``--redis URL`` Redis for them and the click buffer, as in production) with limits
set high enough not to refuse the benchmark, so their cost is measured. Each
link view counts a click (buffered; no ticker runs here, so the server writes them when it stops). With
``--links N`` the views go round N different links, as after a campaign, instead of one link over and over (which
each web process serves from its short-lived page cache). SQLite file by default; BENCH_DATABASE_URL for
PostgreSQL. Prints one JSON line.

    .venv/bin/python bench/shortlink_http.py [--seconds 2] [--rounds 5] [--threads 4] [--workers 2] [--links 1]
        [--redis redis://127.0.0.1:6379/10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_TMP = Path(tempfile.mkdtemp(prefix="bulkapp-bench-"))
os.environ.setdefault("BULKAPP_INSTANCE_DIR", str(_TMP / "instance"))

MAX_REQUESTS_PER_PHASE = 200_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(port: int, paths: list[str], seconds: float, threads: int) -> dict:
    """Hammer ``paths`` (in turn) for ``seconds`` from ``threads`` threads; new connection per request."""
    counts = [0] * threads
    errors = [0] * threads
    stop = time.perf_counter() + seconds

    def worker(n: int) -> None:
        while time.perf_counter() < stop and counts[n] < MAX_REQUESTS_PER_PHASE:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                conn.request("GET", paths[(counts[n] + errors[n]) % len(paths)])
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    counts[n] += 1
                else:
                    errors[n] += 1
            except OSError:
                errors[n] += 1
            finally:
                conn.close()

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    return {"requests": sum(counts), "errors": sum(errors), "rps": sum(counts) / elapsed}


def _load_main() -> None:
    """Child process: run the alternating phases and print their results as JSON."""
    port, codes, seconds, threads = int(sys.argv[2]), sys.argv[3].split(","), float(sys.argv[4]), int(sys.argv[5])
    rounds = int(sys.argv[6])
    links = [f"/x/{code}" for code in codes]
    load(port, ["/healthz"], 0.5, threads)  # warm-up
    load(port, links, 0.5, threads)
    phases = []
    for paths in (["/healthz"], links) * rounds:
        phases.append({"path": paths[0], **load(port, paths, seconds, threads)})
    print(json.dumps(phases))


def _prepare(env: dict, links: int) -> list[str]:
    """Tables, a tenant and one sent SMS with its reply link, plus ``links - 1`` more links; returns the codes."""
    from bulkapp import create_app
    from bulkapp.extensions import db
    from bulkapp.models import ShortLink
    from bulkapp.services.accounts.users import create_client
    from bulkapp.services.messaging.compose import send_message
    from bulkapp.services.messaging.shortlinks import create_short_link

    app = create_app({"SQLALCHEMY_DATABASE_URI": env["DATABASE_URL"], "JOBS_MODE": "inline"})
    with app.app_context():
        db.create_all()
        tenant, _ = create_client(f"bench-link-{os.urandom(3).hex()}", balance="10")
        db.session.commit()
        message = send_message(tenant.id, to="0712345678", body="Your order is ready.", channel="sms")
        db.session.commit()
        for _ in range(links - 1):
            create_short_link(tenant.id, message.id)
        db.session.commit()
        codes = db.session.scalars(db.select(ShortLink.code).where(ShortLink.message_id == message.id)).all()
        db.session.remove()
        db.engine.dispose()
    return list(codes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per phase")
    parser.add_argument("--rounds", type=int, default=5, help="healthz/link phase pairs")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--links", type=int, default=1, help="spread the views over this many links")
    parser.add_argument("--redis", help="Redis URL for the rate limits and the click buffer (a db it may flush)")
    args = parser.parse_args()

    from bulkapp.config import normalise_database_url

    url = os.environ.get("BENCH_DATABASE_URL")
    url = normalise_database_url(url) if url else f"sqlite:///{_TMP / 'bench.db'}"
    high = "1000000 per minute"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": "bench",
        "FERNET_KEYS": os.environ.get("FERNET_KEYS") or "",
        "JOBS_MODE": "inline",
        "RATELIMIT_STORAGE_URI": args.redis or "memory://",
        "SHORTLINK_RATE_LIMIT": high,
        "SHORTLINK_CODE_RATE_LIMIT": high,
        "BASE_URL": "http://localhost",
    }
    if args.redis:
        env["REDIS_URL"] = args.redis
    else:
        env.pop("REDIS_URL", None)
    if not env["FERNET_KEYS"]:
        from cryptography.fernet import Fernet

        env["FERNET_KEYS"] = Fernet.generate_key().decode()
    os.environ.update({k: env[k] for k in ("SECRET_KEY", "FERNET_KEYS")})
    codes = _prepare(env, args.links)

    port = _free_port()
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "wsgi:app", "--workers", str(args.workers), "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.2)
        loader = subprocess.run(
            [sys.executable, __file__, "--load", str(port), ",".join(codes)]
            + [str(args.seconds), str(args.threads), str(args.rounds)],
            capture_output=True,
            text=True,
            timeout=args.seconds * 2 * args.rounds * 4 + 60,
            check=True,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    phases = json.loads(loader.stdout)
    health = [p["rps"] for p in phases if p["path"] == "/healthz"]
    link = [p["rps"] for p in phases if p["path"] != "/healthz"]
    result = {
        "benchmark": "shortlink_http",
        "database": url.split(":", 1)[0],
        "workers": args.workers,
        "client_threads": args.threads,
        "links": args.links,
        "redis": bool(args.redis),
        "seconds_per_phase": args.seconds,
        "rounds": args.rounds,
        "healthz_rps": round(sum(health) / len(health), 1),
        "link_rps": round(sum(link) / len(link), 1),
        "errors": sum(p["errors"] for p in phases),
        "requests": sum(p["requests"] for p in phases),
    }
    result["ratio"] = round(statistics.median(x / h for h, x in zip(health, link, strict=True)), 3)
    result["target"] = "ratio >= 0.5"
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        _load_main()
    else:
        main()
