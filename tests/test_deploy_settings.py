"""Deploy descriptors: production processes run as production; `make run` chooses the simulated M-Pesa."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_procfile_process_runs_with_bulkapp_env_production():
    processes = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert {"release", "web", "worker", "clock"} <= set(processes)
    for name, command in processes.items():
        assert command.startswith("BULKAPP_ENV=production "), name


def test_make_run_and_worker_choose_the_simulated_m_pesa_explicitly():
    if shutil.which("make") is None:
        assert re.search(r"^run worker: export MPESA_ENV \?= simulated$", (ROOT / "Makefile").read_text(), re.M)
        return
    database = make_database(env={"PATH": "/usr/bin:/bin"})
    assert "run: MPESA_ENV = simulated" in database and "worker: MPESA_ENV = simulated" in database
    own = make_database(env={"PATH": "/usr/bin:/bin", "MPESA_ENV": "sandbox"})
    assert "run: MPESA_ENV = simulated" not in own  # ?= : an operator's own choice wins


def make_database(env: dict) -> str:
    """What make knows after reading the Makefile (``make -p``), without running anything."""
    return subprocess.run(["make", "-n", "-p", "run"], cwd=ROOT, capture_output=True, text=True, env=env).stdout
