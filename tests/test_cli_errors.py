"""CLI misuse and start-up configuration errors: one clear line on stderr, a non-zero exit, never a
traceback; a successful run writes its human output to stdout with no JSON log line mixed in.

Every case runs the real command in a separate process, from a folder outside the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cds_service.settings import PROJECT_ROOT
from tests.servers import free_port

CLI = [sys.executable, "-m", "cds_service.cli"]
UVICORN = [sys.executable, "-m", "uvicorn", "cds_service.app:create_app", "--factory", "--host", "127.0.0.1"]


def run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    return subprocess.run(
        command,
        cwd=cwd,
        env={**clean, "PYTHONPATH": str(PROJECT_ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


MISUSE = [
    (["fire", "nobody"], {}, ["cds-service fire: unknown fixture patient 'nobody'", "cds-service fixtures"]),
    (
        ["fire", "adult-normal-labs", "--hook", "order-sign", "--order", "anakinra-1000mg"],
        {},
        ["unknown draft order 'anakinra-1000mg'"],
    ),
    (["fire", "adult-normal-labs", "--hook", "order-sign"], {}, ["order-sign needs --order"]),
    (["fire", "--case", "no-such-case"], {}, ["unknown case 'no-such-case'"]),
    (["fire"], {}, ["fire needs a PATIENT or --case"]),
    (["fire", "adult-normal-labs", "--hook", "medication-prescribe"], {}, ["invalid choice: 'medication-prescribe'"]),
    (["frobnicate"], {}, ["invalid choice: 'frobnicate'", "--help"]),
    (["check"], {"CDS_TIMEZONE": "Mars/Base"}, ["CDS_TIMEZONE: unknown IANA time zone 'Mars/Base'"]),
    (["fire", "adult-normal-labs"], {"CDS_FHIR_MAX_PAGES": "0"}, ["CDS_FHIR_MAX_PAGES: Input should be greater"]),
    (["check"], {"CDS_HOOKS_DIR": "/nonexistent/hooks"}, ["hooks folder not found: /nonexistent/hooks"]),
]


@pytest.mark.parametrize(("argv", "env", "phrases"), MISUSE, ids=[" ".join(m[0]) + str(m[1]) for m in MISUSE])
def test_cli_misuse_is_one_line_and_exit_2(
    tmp_path: Path, argv: list[str], env: dict[str, str], phrases: list[str]
) -> None:
    assert_one_line_error(run([*CLI, *argv], tmp_path, **env), *phrases)


@pytest.mark.parametrize("command", ["check", "fire"])
def test_an_unreachable_url_is_one_line(tmp_path: Path, command: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    argv = [command, "--url", url] if command == "check" else [command, "adult-normal-labs", "--url", url]
    assert_one_line_error(run([*CLI, *argv], tmp_path), f"could not reach {url}")


STARTUP = [
    ({"CDS_SANDBOX": "true", "CDS_TIMEZONE": "Mars/Base"}, ["CDS_TIMEZONE: unknown IANA time zone"]),
    ({}, ["no trusted issuers: set CDS_TRUSTED_ISSUERS_FILE"]),
    ({"CDS_SANDBOX": "true", "CDS_CORS_ORIGINS": '["*"]'}, ["CDS_CORS_ORIGINS must list explicit origins"]),
    ({"CDS_SANDBOX": "true", "CDS_CORS_ORIGINS": "not json"}, ["CDS_CORS_ORIGINS"]),
    ({"CDS_SANDBOX": "true", "CDS_HOOKS_DIR": "/nonexistent/hooks"}, ["hooks folder not found"]),
    ({"CDS_SANDBOX": "true", "CDS_DATABASE_URL": "nonsense"}, ["database nonsense not usable", "CDS_DATABASE_URL"]),
    (
        {"CDS_SANDBOX": "true", "CDS_DATABASE_URL": "postgresql+psycopg://cds:s3cret@127.0.0.1:1/cds"},
        ["postgresql+psycopg://cds:***@127.0.0.1:1/cds not usable"],
    ),
    (
        {"CDS_TRUSTED_ISSUERS_FILE": "/nonexistent/issuers.yaml", "CDS_PUBLIC_BASE_URL": "https://cds.example.org"},
        ["issuers.yaml"],
    ),
]


@pytest.mark.parametrize(("env", "phrases"), STARTUP, ids=[str(s[0]) for s in STARTUP])
def test_startup_configuration_errors_are_one_line_for_serve_and_uvicorn(
    tmp_path: Path, env: dict[str, str], phrases: list[str]
) -> None:
    port = str(free_port())
    serve = [*CLI, "serve", "--port", port]
    served = run(serve, tmp_path, **env)
    assert_one_line_error(served, "cds-service: cannot start:", *phrases)
    assert "s3cret" not in served.stderr
    # `make run` and the production command start uvicorn with the factory directly: the same line.
    assert_one_line_error(run([*UVICORN, "--port", port], tmp_path, **env), "cds-service: cannot start:", *phrases)


def test_sandbox_on_a_public_address_is_refused_in_one_line(tmp_path: Path) -> None:
    result = run([*CLI, "serve", "--sandbox", "--host", "0.0.0.0", "--port", str(free_port())], tmp_path)  # noqa: S104
    assert_one_line_error(result, "sandbox mode has no authentication and may only bind to a loopback address")


def test_a_successful_fire_writes_cards_to_stdout_and_no_log_lines(tmp_path: Path) -> None:
    result = run([*CLI, "fire", "--case", "sepsis-82kg-overdose-sign", "--brief"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "MATCH: as expected" in result.stdout
    assert result.stderr == ""
    assert not [line for line in result.stdout.splitlines() if line.startswith("{")]
