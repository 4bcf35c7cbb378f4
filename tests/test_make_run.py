"""README's first command: `make run` serves discovery (and the sandbox page) on the given port."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from cds_service.settings import PROJECT_ROOT
from tests.servers import free_port


def test_make_run_answers_discovery(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "CDS_DATABASE_URL": f"sqlite:///{tmp_path / 'run.sqlite3'}"}
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"PORT={port}"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60  # the first run may still install into .venv
        services: list[dict[str, str]] = []
        while time.monotonic() < deadline and not services:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            try:
                services = httpx.get(f"http://127.0.0.1:{port}/cds-services", timeout=1).json()["services"]
            except httpx.HTTPError:
                time.sleep(0.2)
        assert {(s["id"], s["hook"]) for s in services} == {
            ("mas-screen", "patient-view"),
            ("anakinra-dose-order-select", "order-select"),
            ("anakinra-dose-order-sign", "order-sign"),
        }
        assert httpx.get(f"http://127.0.0.1:{port}/sandbox", timeout=5).status_code == 200
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
