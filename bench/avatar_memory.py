"""Peak memory of an avatar upload: the 315 KB PNG declaring 9000 x 9000 RGBA pixels (324 MB decoded), decoded
the way main did before the size check (open, verify, thumbnail) against ``profiles.save_avatar`` today, and a
legitimate 4096 x 4096 picture through ``save_avatar`` for scale. Each case runs in a fresh Python process
(``ru_maxrss`` is a high-water mark), next to a baseline process that only imports the app. Prints one JSON line
with peak RSS in MB.

    .venv/bin/python bench/avatar_memory.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CASE = r"""
import io, resource, sys, tempfile
sys.path.insert(0, {root!r})
from tests.services.accounts.test_avatars import bomb_png
from bulkapp import create_app
from bulkapp.services.accounts import profiles
from bulkapp.services.accounts.users import AccountError
from PIL import Image

case = {case!r}
data = bomb_png(*{size!r})
app = create_app(dict(AVATAR_DIR=tempfile.mkdtemp(), SQLALCHEMY_DATABASE_URI="sqlite://"))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
outcome = "stored" if case != "baseline" else "-"
with app.app_context():
    if case == "old":
        Image.MAX_IMAGE_PIXELS = 89_478_485  # Pillow's default, which main used
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail((256, 256))
            image.convert("RGBA")
    elif case == "new":
        class Someone:
            id, avatar = 1, None
        try:
            profiles.save_avatar(Someone(), data)
        except AccountError as exc:
            outcome = "refused: " + str(exc)
        except Exception as exc:  # the database is empty: a stored picture fails at flush, after the decode
            outcome = "decoded (" + type(exc).__name__ + ")"
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, before, outcome)
"""


def run(case: str, size: tuple[int, int]) -> dict:
    env = dict(os.environ, BULKAPP_INSTANCE_DIR=tempfile.mkdtemp(prefix="bulkapp-bench-"))
    result = subprocess.run(
        [sys.executable, "-c", CASE.format(root=str(ROOT), case=case, size=size)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=ROOT,
    )
    peak, before, outcome = result.stdout.strip().split(" ", 2)
    return {"peak_mb": round(int(peak) / 1024), "before_mb": round(int(before) / 1024), "outcome": outcome}


def main() -> None:
    figures = {
        "baseline": run("baseline", (16, 16)),
        "bomb_9000_old_decode": run("old", (9000, 9000)),
        "bomb_9000_save_avatar": run("new", (9000, 9000)),
        "square_4096_save_avatar": run("new", (4096, 4096)),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
