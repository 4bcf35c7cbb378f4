"""The installable package: build the wheel, install it into a fresh virtual environment under a temporary
folder, and run the installed `cds-service` from a folder outside the checkout.

Sound: the venv has no system site-packages and no PYTHONPATH; it holds the built wheel and the runtime
dependencies only (not the dev extras), so a file the wheel forgot, or code that reaches into the
checkout, fails here. Fast: the dependencies are installed with `pip install --no-index --find-links` from
a wheelhouse under var/ (gitignored), downloaded once at the versions the dev venv runs (its `pip freeze`
as constraints) and reused while they stay the same; pip itself comes from the dev venv (`pip --python`),
so the venv needs no pip of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest

from cds_service.registry import load_registry
from cds_service.sandbox.fixtures import load_cases
from cds_service.settings import PROJECT_ROOT
from tests.servers import free_port

WHEELHOUSE = PROJECT_ROOT / "var" / "wheelhouse"
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "cds_service", "hooks", "fixtures")


def _run(
    command: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout}\n{result.stderr}"
    return result


def _build_wheel(folder: Path) -> Path:
    """From a copy of the sources, so the build writes nothing into the checkout."""
    source = folder / "source"
    for name in SOURCES:
        origin = PROJECT_ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(origin, source / name)
    _run(
        [
            *PIP,
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(folder / "dist"),
            str(source),
        ]
    )
    (wheel,) = (folder / "dist").glob("cds_service-*.whl")
    return wheel


def _fill_wheelhouse(folder: Path) -> None:
    """Runtime dependencies at the dev venv's versions; the network only when one is not there yet."""
    requirements = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    frozen = _run([*PIP, "freeze", "--exclude-editable"]).stdout
    constraints = folder / "constraints.txt"
    constraints.write_text("\n".join(line for line in frozen.splitlines() if "==" in line) + "\n")
    download = [
        *PIP,
        "download",
        "--quiet",
        "--only-binary",
        ":all:",
        "--dest",
        str(WHEELHOUSE),
        "-c",
        str(constraints),
    ]
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    offline = subprocess.run(
        [*download, "--no-index", "--find-links", str(WHEELHOUSE), *requirements],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if offline.returncode != 0:
        _run([*download, *requirements])


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("wheel")
    wheel = _build_wheel(folder)
    _fill_wheelhouse(folder)
    venv = folder / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run(
        [*PIP, "--python", str(python), "install", "--quiet", "--no-index", "--find-links", str(WHEELHOUSE), str(wheel)]
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CDS_", "PYTHON", "VIRTUAL_ENV", "PIP_")) and key != "PROMETHEUS_MULTIPROC_DIR"
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return venv, env


def test_the_installed_package_is_the_wheel_not_the_checkout(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    venv, env = installed
    probe = "import cds_service; print(cds_service.__file__)"
    where = _run([str(venv / "bin" / "python"), "-c", probe], cwd=tmp_path, env=env).stdout.strip()
    assert Path(where).is_relative_to(venv), where
    # Only the runtime dependencies: no test tool leaked in.
    for dev_only in ("pytest", "hypothesis", "selenium", "mypy"):
        found = subprocess.run([str(venv / "bin" / "python"), "-c", f"import {dev_only}"], env=env, capture_output=True)
        assert found.returncode != 0, dev_only


def test_installed_cds_service_serves_discovery_and_the_sandbox_page_from_another_folder(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    venv, env = installed
    port = free_port()
    process = subprocess.Popen(
        [str(venv / "bin" / "cds-service"), "serve", "--sandbox", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        services: list[dict[str, object]] = []
        deadline = time.monotonic() + 30
        while not services and time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            try:
                services = httpx.get(f"{base}/cds-services", timeout=1).json()["services"]
            except httpx.HTTPError:
                time.sleep(0.2)
        expected = [entry.model_dump(exclude_none=True) for entry in load_registry(PROJECT_ROOT / "hooks").discovery()]
        assert services == expected  # the bundled hooks are the checkout's
        page = httpx.get(f"{base}/sandbox", timeout=5)
        assert page.status_code == 200 and "MAS CDS Hooks sandbox" in page.text
        assert httpx.get(f"{base}/sandbox/static/app.js", timeout=5).status_code == 200
        patients = httpx.get(f"{base}/sandbox/api/patients", timeout=10).json()
        assert len(patients) == len(list((PROJECT_ROOT / "fixtures" / "patients").glob("*.json")))
        assert httpx.get(f"{base}/sandbox/fhir/metadata", timeout=5).status_code == 200
        assert (tmp_path / "var" / "cds.sqlite3").is_file()  # state in the working folder, not site-packages
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


def test_installed_cds_service_check_and_fixtures_run_from_another_folder(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    venv, env = installed
    check = _run([str(venv / "bin" / "cds-service"), "check"], cwd=tmp_path, env=env)
    assert f"{len(load_cases())} passed, 0 failed" in check.stdout
    assert check.stderr == ""
    listing = _run([str(venv / "bin" / "cds-service"), "fixtures"], cwd=tmp_path, env=env)
    cases = json.loads((PROJECT_ROOT / "fixtures" / "cases.json").read_text())["cases"]
    assert all(case["name"] in listing.stdout for case in cases)
