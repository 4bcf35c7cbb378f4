"""The rule pack as a deployment meets it: checked at start-up, overridable by a site only within its bounds,
identified (id, version, content hash) in discovery and in every audit record, and the only place clinical
parameters can be set."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select

from cds_service.app import create_app
from cds_service.rulepack import default_pack
from cds_service.rulepack.loader import PACK_DIR, RulePackError, load_rule_pack
from cds_service.sandbox.fixtures import build_request, load_patients
from cds_service.startup import StartupError
from cds_service.storage.database import audit
from tests.conftest import FIXED_NOW, make_settings

SHIPPED = default_pack()


def _overrides(tmp_path: Path, parameters: dict[str, Any], site: str = "General Hospital") -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(
        yaml.safe_dump({"site": site, "why": "local antimicrobial stewardship committee", "parameters": parameters})
    )
    return path


def _pack_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "pack"
    shutil.copytree(PACK_DIR, folder)
    return folder


def test_the_shipped_pack_is_identified_by_id_version_and_a_content_hash() -> None:
    identity = SHIPPED.identity()
    assert set(identity) == {"id", "version", "sha256"}
    assert len(identity["sha256"]) == 64 and int(identity["sha256"], 16) >= 0
    assert load_rule_pack().sha256 == SHIPPED.sha256  # the same files, the same hash


def test_a_site_override_within_bounds_changes_the_parameter_and_the_hash(tmp_path: Path) -> None:
    pack = load_rule_pack(overrides=_overrides(tmp_path, {"lab_window_hours": 48}))
    assert pack.parameters.lab_window == timedelta(hours=48)
    assert SHIPPED.parameters.lab_window == timedelta(hours=72)
    assert pack.parameter_entries["lab_window_hours"].overridden
    assert pack.sha256 != SHIPPED.sha256
    assert pack.identity()["site"] == "General Hospital"
    assert pack.rule_versions()["rule-pack-site"] == "General Hospital"


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"lab_window_hours": 200}, "outside its bounds"),  # pack bounds 24-168 h
        ({"lab_window_hours": 23}, "outside its bounds"),
        ({"adult_age_years": 12}, "outside its bounds"),
        ({"dose_rounding_mg": 3}, "is not one of"),  # allowed 1, 5, 10
        ({"ferritin_threshold": 300}, "unknown parameter"),  # thresholds are not site parameters
    ],
)
def test_a_site_override_outside_the_pack_is_refused(tmp_path: Path, parameters: dict[str, Any], message: str) -> None:
    with pytest.raises(RulePackError, match=message):
        load_rule_pack(overrides=_overrides(tmp_path, parameters))


def test_bounds_are_inclusive_at_both_ends(tmp_path: Path) -> None:
    assert load_rule_pack(overrides=_overrides(tmp_path, {"lab_window_hours": 24})).parameters.lab_window == timedelta(
        hours=24
    )
    assert load_rule_pack(overrides=_overrides(tmp_path, {"lab_window_hours": 168})).parameters.lab_window == timedelta(
        hours=168
    )


@pytest.mark.parametrize(
    ("file", "edit", "message"),
    [
        ("criteria/hlh2004.yaml", lambda doc: doc["items"]["ferritin"].update(unit="furlongs"), "hlh2004"),
        ("criteria/hscore.yaml", lambda doc: doc.update(role="decisive"), "hscore"),
        ("analytes.yaml", lambda doc: doc["analytes"][0].update(colour="red"), "analytes.yaml"),
        ("pack.yaml", lambda doc: doc["sets"].remove("trends"), "pack.yaml"),
    ],
    ids=["unit-not-accepted", "unknown-role", "unknown-field", "set-not-listed"],
)
def test_a_broken_pack_refuses_to_load_and_names_the_file(
    tmp_path: Path, file: str, edit: Callable[[Any], None], message: str
) -> None:
    folder = _pack_copy(tmp_path)
    document = yaml.safe_load((folder / file).read_text())
    edit(document)
    (folder / file).write_text(yaml.safe_dump(document, allow_unicode=True))
    with pytest.raises(RulePackError, match=message):
        load_rule_pack(folder)


def test_the_service_refuses_to_start_on_a_refused_pack(tmp_path: Path, sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, rule_pack_overrides=_overrides(tmp_path, {"lab_window_hours": 1000}))
    with pytest.raises(StartupError, match=r"rule pack refused: .*outside its bounds"):
        create_app(settings)


def test_retired_clinical_settings_refuse_start_up_and_say_where_they_went(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    """Issue #10: windows, adult age, weight recency, rounding and tolerance were environment variables; a site that
    still sets one must not believe it is in force."""
    monkeypatch.setenv("CDS_LAB_LOOKBACK_HOURS", "48")
    monkeypatch.setenv("CDS_DOSE_ROUNDING", "down-10mg")
    with pytest.raises(StartupError) as refused:
        create_app(make_settings(sqlite_url))
    message = str(refused.value)
    assert "CDS_DOSE_ROUNDING, CDS_LAB_LOOKBACK_HOURS" in message
    assert "CDS_LAB_LOOKBACK_HOURS -> lab_window_hours" in message and "CDS_RULE_PACK_OVERRIDES" in message


def _audited_pack(database_url: str) -> dict[str, str]:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        versions = [json.loads(row.rule_versions) for row in connection.execute(select(audit.c.rule_versions))]
    engine.dispose()
    assert versions, "no audit record"
    return versions[-1]


def test_every_audit_record_names_the_pack_in_force(tmp_path: Path, sqlite_url: str) -> None:
    """So any card can be replayed: the same recorded version under two sites' overrides differs by hash."""
    patient = load_patients()["child-sjia-mas-22kg"]
    overrides = _overrides(tmp_path, {"lab_window_hours": 96})
    for settings, pack in (
        (make_settings(sqlite_url), SHIPPED),
        (make_settings(sqlite_url, rule_pack_overrides=overrides), load_rule_pack(overrides=overrides)),
    ):
        app = create_app(settings, clock=lambda: FIXED_NOW)
        with TestClient(app) as client:
            service = app.state.registry.services["mas-screen"]
            response = client.post(
                "/cds-services/mas-screen", json=build_request(patient, service, hook="patient-view", now=FIXED_NOW)
            )
            assert response.status_code == 200
            discovered = client.get("/cds-services").json()["services"][0]["extension"]["mas-cds-rule-pack"]
        recorded = _audited_pack(sqlite_url)
        assert recorded["rule-pack"] == f"mas-cds@{pack.version}+sha256:{pack.sha256}"
        assert discovered == pack.identity()
        assert recorded.get("rule-pack-site") == pack.site
