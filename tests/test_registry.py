"""The hooks-file loader refuses bad configuration at start-up; discovery equals the files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cds_service.facts.analytes import A
from cds_service.registry import PACK_CODES, ServiceConfigError, load_registry
from cds_service.rulepack import default_pack
from cds_service.settings import PROJECT_ROOT

GOOD: dict[str, Any] = {
    "id": "svc",
    "hooks": ["patient-view"],
    "title": "T",
    "description": "D",
    "prefetch": {"patient": "Patient/{{context.patientId}}"},
    "_config": {"handler": "tests.core_service:handle", "required": ["patient"]},
}


def _write(folder: Path, document: Any, name: str = "svc.json") -> Path:
    (folder / name).write_text(json.dumps(document))
    return folder


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"prefetch": {"p": "Observation?date=gt{{today()}}"}}, "tokens STU2 does not define"),
        ({"prefetch": {"p": "Patient/{{context.draftOrders}}"}}, "tokens STU2 does not define"),
        (
            {"prefetch": {"p": "Observation?patient={{context.patientId}}&date=gt{{today() - 3 days}}"}},
            "tokens STU2 does not define",
        ),
        ({"prefetch": {"p": "https://other/Patient/1"}}, "relative"),
        ({"hooks": ["medication-prescribe"]}, "'hooks'"),
        ({"hooks": []}, "'hooks'"),
        ({"_config": {"handler": "tests.core_service:nope"}}, "not importable"),
        ({"_config": {"handler": "no_colon"}}, "module:function"),
        ({"_config": {"handler": "tests.core_service:handle", "required": ["labs"]}}, "declared prefetch"),
        ({"description": ""}, "'description'"),
        ({"id": "other"}, "file name"),
    ],
)
def test_bad_service_files_refuse_to_load(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    _write(tmp_path, {**GOOD, **change})
    with pytest.raises(ServiceConfigError, match=message):
        load_registry(tmp_path)


def test_not_json_refuses_to_load(tmp_path: Path) -> None:
    (tmp_path / "svc.json").write_text("{")
    with pytest.raises(ServiceConfigError, match="not readable JSON"):
        load_registry(tmp_path)


def test_user_tokens_are_allowed(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            **GOOD,
            "prefetch": {"user": "Practitioner/{{userPractitionerId}}"},
            "_config": {"handler": "tests.core_service:handle"},
        },
    )
    registry = load_registry(tmp_path)
    assert registry.discovery()[0].prefetch == {"user": "Practitioner/{{userPractitionerId}}"}


def test_discovery_equals_the_shipped_hooks_files() -> None:
    """Discovery is the hooks files, with the rule pack's codes expanded and the pack's identity as an extension."""
    pack = default_pack()
    registry = load_registry(PROJECT_ROOT / "hooks")
    expected: list[dict[str, Any]] = []
    for path in sorted((PROJECT_ROOT / "hooks").glob("*.json")):
        document = json.loads(path.read_text())
        entry = {k: v for k, v in document.items() if k not in ("_config", "hooks")}
        entry["prefetch"] = {
            key: PACK_CODES.sub(
                lambda m: pack.catalogue.loinc_query(A(name) for name in m.group(1).split(",")), template
            )
            for key, template in entry["prefetch"].items()
        }
        extension = {"mas-cds-rule-pack": pack.identity()}
        expected.extend(
            {**entry, "hook": hook, "version": "2.0.1", "extension": extension} for hook in document["hooks"]
        )
    actual = [service.model_dump(exclude_none=True) for service in registry.discovery()]
    assert actual == expected
    assert all("{{pack." not in template for entry in actual for template in entry["prefetch"].values())
