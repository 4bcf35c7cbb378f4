"""schemathesis against the app's own OpenAPI (positive and negative bodies): no input gives a 5xx, and
every answer passes the CDS Hooks contract checker."""

from __future__ import annotations

import importlib
import pkgutil
import tempfile
from collections import Counter
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import response_schema_conformance

import cds_service
from cds_service.app import create_app
from tests.conftest import FIXED_NOW, make_settings
from tests.contract import response_problems

# Hypothesis draws on the literals of every local module imported so far ("local constants"), so what this
# fuzzing generates would otherwise depend on which other test files ran first. Importing the whole package
# makes the generated cases the same in every run and selection.
for _module in pkgutil.walk_packages(cds_service.__path__, "cds_service."):
    if not _module.name.startswith("cds_service.storage.migrations."):  # Alembic scripts run inside Alembic only
        importlib.import_module(_module.name)

APP = create_app(
    make_settings(f"sqlite:///{Path(tempfile.mkdtemp()) / 'schemathesis.sqlite3'}"), clock=lambda: FIXED_NOW
)
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APP)
SEEN: Counter[tuple[str, str, int]] = Counter()


@SCHEMA.parametrize()
@settings(max_examples=160, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    response = case.call()
    SEEN[(case.method, case.path, response.status_code)] += 1
    assert response.status_code < 500, response.text
    problems = response_problems(case.method, case.formatted_path, response.status_code, response.content)
    assert not problems, problems
    # The documented response schemas resolve (no dangling $ref) and every answer matches them: the card format
    # is checked by schemathesis too, not only by our own contract checker.
    case.validate_response(response, checks=[response_schema_conformance])


def test_the_fuzzing_reached_the_hook_endpoints() -> None:
    """Runs after the generated cases (file order): they must have produced real answers, not only 404s."""
    statuses = {
        status
        for (method, path, status) in SEEN
        if method == "POST" and path.startswith("/cds-services/") and not path.endswith("/feedback")
    }
    assert 400 in statuses  # negative bodies
    assert statuses & {200, 412}  # valid bodies reached the services' data step
    assert sum(count for (method, path, _), count in SEEN.items() if method == "POST") >= 20
