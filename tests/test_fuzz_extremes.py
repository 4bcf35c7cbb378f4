"""Issue 12, the hostile-body part of the fault-injection suite: hypothesis bodies at the type extremes — dates
at the calendar's edges with every zone offset, decimals beyond any float or Decimal context, nesting far
past any FHIR depth, broken encodings — on both services and on feedback, over SQLite and PostgreSQL.

Every answer is checked by the contract checker (no 5xx, 4xx with an OperationOutcome), and every feedback
item is accounted for: stored, a duplicate, or kept as rejected — nothing silently lost."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from cds_service.app import create_app
from cds_service.storage.database import feedback, feedback_rejected
from tests.clinical_builders import (
    anakinra_order,
    bundle,
    dose_prefetch,
    measurement,
    normal_safety_labs,
    order_request,
    patient,
    weight,
)
from tests.conftest import FIXED_NOW, _postgres_schema_url, contract_client, make_settings

DOSE = "/cds-services/anakinra-dose"
MAS = "/cds-services/mas-screen"
FEEDBACK = "/cds-services/anakinra-dose/feedback"
EXAMPLES = settings(
    max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# -- strategies ---------------------------------------------------------------------------------------------------

edge_years = st.one_of(st.sampled_from([1, 2, 1582, 1900, 1970, 2026, 9998, 9999]), st.integers(1, 9999))
offsets = st.sampled_from(["Z", "+00:00", "-00:00", "+14:00", "-14:00", "+23:59", "-23:59", "+05:30", "-12:00"])


INVALID_TIMES = (
    *("0000-01-01", "99999-01-01", "2026-02-30", "2026-13-01", "2026-03-10T24:00:00Z", "2026-03-10T12:00:00"),
    *("", " ", "T", "2026-03-10T12:00:00+99:99", "-2026-01-01", "1e9"),
)
EDGE_NUMBERS = (
    *("0", "-0", "0.0", "1e999999999", "-1e999999999", "1e-999999999", "1e308", "1e309", "-1e309", "5e-324"),
    *("123456789012345678901234567890.123456789012345678901234567890", "1E+400", "0.000000000000000000000000001"),
    *("18446744073709551616", "-9223372036854775809", "1" * 400),
)


@st.composite
def fhir_times(draw: st.DrawFn) -> str:
    year = draw(edge_years)
    month = draw(st.integers(1, 12))
    day = draw(st.integers(1, 31))
    kind = draw(st.sampled_from(["year", "month", "date", "instant", "fraction", "invalid"]))
    if kind == "year":
        return f"{year:04d}"
    if kind == "month":
        return f"{year:04d}-{month:02d}"
    if kind == "date":
        return f"{year:04d}-{month:02d}-{day:02d}"
    time = f"{draw(st.integers(0, 23)):02d}:{draw(st.integers(0, 59)):02d}:{draw(st.integers(0, 59)):02d}"
    if kind == "fraction":
        time += "." + "9" * draw(st.integers(1, 12))
    if kind == "invalid":
        return draw(st.sampled_from(INVALID_TIMES))
    return f"{year:04d}-{month:02d}-{day:02d}T{time}{draw(offsets)}"


number_literals = st.one_of(
    st.sampled_from(EDGE_NUMBERS),
    st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: str(d).replace("E", "e")),
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)


@st.composite
def nestings(draw: st.DrawFn) -> str:
    depth = draw(st.one_of(st.integers(0, 60), st.integers(190, 260), st.integers(900, 1100), st.just(50_000)))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}"), ('[{"b":', "}]")]))
    return opener * depth + "1" + closer * depth


broken_bytes = st.one_of(
    st.binary(min_size=1, max_size=6),
    st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\x00", b"\\ud800"]),
)


def _fill(body: dict[str, Any], literals: dict[str, str]) -> bytes:
    text = json.dumps(body)
    for placeholder, literal in literals.items():
        text = text.replace(json.dumps(placeholder), literal)
    return text.encode()


# -- the apps -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fuzz_client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    if request.param == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{tmp_path_factory.mktemp('extremes') / 'cds.sqlite3'}"])
    else:
        urls = _postgres_schema_url()
    url = next(urls)
    app = create_app(make_settings(url), clock=lambda: FIXED_NOW)
    with contract_client(app) as client:
        yield client
    for _ in urls:  # let the PostgreSQL generator drop its schema
        pass


def _post(client: TestClient, path: str, body: bytes) -> int:
    response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code < 500, response.text  # the contract hook checks the rest of the answer
    return response.status_code


# -- dates ----------------------------------------------------------------------------------------------------------


@EXAMPLES
@given(birth=fhir_times(), weighed=fhir_times(), lab=fhir_times(), authored=fhir_times())
def test_dates_at_the_calendar_edges(
    fuzz_client: TestClient, birth: str, weighed: str, lab: str, authored: str
) -> None:
    body_weight = weight(30, obs_id="w-fuzz")
    body_weight["effectiveDateTime"] = weighed
    creatinine = measurement("2160-0", 0.8, "mg/dL", issued=lab)
    creatinine.pop("effectiveDateTime")
    active = anakinra_order(100, order_id="mr-active", status="active", authoredOn=authored)
    prefetch = dose_prefetch(
        patient_resource=patient(birth), weights=[body_weight], labs=[creatinine], medications=[active]
    )
    assert _post(
        fuzz_client, DOSE, json.dumps(order_request("order-sign", [anakinra_order(90)], prefetch=prefetch)).encode()
    ) in (200, 400, 412)

    ferritin = measurement("2276-4", 5000, "ng/mL", obs_id="f-fuzz")
    ferritin["effectiveDateTime"] = lab
    condition = {"resourceType": "Condition", "id": "c1", "onsetDateTime": authored, "recordedDate": weighed}
    mas_body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/p1", "patientId": "pat1"},
        "prefetch": {
            "patient": patient(birth),
            "labs": bundle(ferritin),
            "vitals": bundle(body_weight),
            "conditions": bundle(condition),
            "medications": bundle(active),
        },
    }
    assert _post(fuzz_client, MAS, json.dumps(mas_body).encode()) in (200, 400, 412)


# -- decimals -------------------------------------------------------------------------------------------------------


@EXAMPLES
@given(value=number_literals, dose=number_literals, period=number_literals, frequency=number_literals)
def test_numbers_beyond_any_range(fuzz_client: TestClient, value: str, dose: str, period: str, frequency: str) -> None:
    order = anakinra_order("DOSE", every_hours="PERIOD")  # type: ignore[arg-type]
    order["dosageInstruction"][0]["timing"]["repeat"].update(periodMax="PERIOD", frequency="FREQUENCY")
    heavy = weight(30, obs_id="w-fuzz")
    heavy["valueQuantity"]["value"] = "VALUE"
    heavy["referenceRange"] = [{"high": {"value": "VALUE", "unit": "kg"}}]
    prefetch = dose_prefetch(weights=[heavy, weight(30)], labs=normal_safety_labs())
    literals = {"DOSE": dose, "PERIOD": period, "FREQUENCY": frequency, "VALUE": value}
    body = _fill(order_request("order-sign", [order], prefetch=prefetch), literals)
    assert _post(fuzz_client, DOSE, body) in (200, 400, 412)


# -- nesting --------------------------------------------------------------------------------------------------------


@EXAMPLES
@given(nested=nestings(), where=st.sampled_from(["top", "prefetch", "resource", "context", "feedback"]))
def test_nesting_far_past_any_fhir_depth(fuzz_client: TestClient, nested: str, where: str) -> None:
    if where == "feedback":
        item = {"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-03-10T12:00:00Z", "x": "NEST"}
        assert _post(fuzz_client, FEEDBACK, _fill({"feedback": [item]}, {"NEST": nested})) in (200, 400)
        return
    body = order_request("order-sign", [anakinra_order(100)], prefetch=dose_prefetch(weights=[weight(30)]))
    if where == "top":
        body["extension"] = "NEST"
    elif where == "prefetch":
        body["prefetch"]["weights"] = "NEST"
    elif where == "resource":
        body["prefetch"]["patient"]["extension"] = "NEST"
    else:
        body["context"]["encounterId"] = "NEST"
    assert _post(fuzz_client, DOSE, _fill(body, {"NEST": nested})) in (200, 400, 412)


# -- encodings ------------------------------------------------------------------------------------------------------


@EXAMPLES
@given(broken=broken_bytes, where=st.sampled_from([b'"pat1"', b'"w-fuzz"', b'"kg"', b'"Practitioner/p1"']))
def test_broken_encodings(fuzz_client: TestClient, broken: bytes, where: bytes) -> None:
    body = order_request(
        "order-sign", [anakinra_order(100)], prefetch=dose_prefetch(weights=[weight(30, obs_id="w-fuzz")])
    )
    raw = json.dumps(body).encode()
    spliced = raw.replace(where, where[:-1] + broken + b'"', 1)
    assert _post(fuzz_client, DOSE, spliced) in (200, 400, 412)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32", "latin-1"])
def test_bodies_in_other_encodings(fuzz_client: TestClient, encoding: str) -> None:
    body = json.dumps(order_request("order-sign", [anakinra_order(100)], prefetch=dose_prefetch()), ensure_ascii=False)
    assert _post(fuzz_client, DOSE, body.replace("pat1", "pät1").encode(encoding)) in (200, 400, 412)


# -- feedback: every item accounted for ----------------------------------------------------------------------------

feedback_items = st.fixed_dictionaries(
    {
        "card": st.one_of(st.uuids().map(str), st.text(max_size=300), st.just("c\x00d")),
        "outcome": st.sampled_from(["overridden", "accepted", "ignored"]),
        "outcomeTimestamp": fhir_times(),
    },
    optional={
        "overrideReason": st.fixed_dictionaries(
            {"reason": st.fixed_dictionaries({"code": st.text(max_size=600), "system": st.text(max_size=600)})},
            optional={"userComment": st.text()},
        ),
        "acceptedSuggestions": st.lists(st.fixed_dictionaries({"id": st.text(max_size=50)}), max_size=2),
    },
)


def _count(client: TestClient, table: Any) -> int:
    with client.app.state.engine.connect() as connection:  # type: ignore[attr-defined]
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


@EXAMPLES
@given(items=st.lists(feedback_items, min_size=1, max_size=5))
def test_every_feedback_item_is_stored_or_kept_as_rejected(
    fuzz_client: TestClient, items: list[dict[str, Any]]
) -> None:
    before = _count(fuzz_client, feedback), _count(fuzz_client, feedback_rejected)
    response = fuzz_client.post(FEEDBACK, json={"feedback": items})
    assert response.status_code in (200, 400), response.text
    stored = _count(fuzz_client, feedback) - before[0]
    rejected = _count(fuzz_client, feedback_rejected) - before[1]
    if response.status_code == 200:
        answer = response.json()
        assert (answer["stored"], rejected) == (stored, 0)
        assert answer["stored"] + answer["duplicates"] == len(items)
    else:
        assert rejected == len(response.json()["issue"])
        assert stored + rejected <= len(items)  # the rest were duplicates of stored items
        assert rejected >= 1
