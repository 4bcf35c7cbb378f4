"""FHIR Bulk Data `$export` (Bulk Data Access IG v2) over the sandbox patients: the fixture patients plus a
generated population, every time shifted to "now" at kick-off. Sandbox only, no authentication.

    GET|POST [base]/Patient/$export, [base]/Group/[id]/$export   (Prefer: respond-async)  -> 202 Content-Location
    GET      [base]/$export-status/[job]   -> 202 + Retry-After while running, 200 + manifest when complete
    DELETE   [base]/$export-status/[job]   -> 202 (cancelled and deleted)
    GET      [base]/$export-file/[job]/[name]  -> application/fhir+ndjson

Groups: `all`, `fixtures`, `generated`. Parameters: `_outputFormat`, `_type`, `_since`, `_typeFilter`
(the sandbox store's search subset); others are refused with 400 and an OperationOutcome.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from cds_service.facts.fhir_time import parse_fhir_time
from cds_service.population.generate import Mix, patient_resources
from cds_service.sandbox.fixtures import FIXTURE_EPOCH, FixturePatient, load_patients
from cds_service.sandbox.store import FhirStore, SearchError
from cds_service.spec.operation_outcome import IssueCode, build_operation_outcome

EXPORT_TYPES = ("Patient", "Observation", "Condition", "MedicationRequest")
NDJSON_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
LINES_PER_FILE = 5000
GENERATED_PATIENTS = 200
GENERATED_SEED = 2026
MAX_JOBS = 20
FHIR_JSON = "application/fhir+json"


@dataclass
class Job:
    id: str
    request: str
    created: float
    ready_at: float
    transaction_time: str
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # name -> (type, content)
    counts: dict[str, int] = field(default_factory=dict)


def generated_population(count: int = GENERATED_PATIENTS, seed: int = GENERATED_SEED) -> dict[str, FixturePatient]:
    rng = random.Random(seed)  # noqa: S311 (synthetic data, reproducible by seed)
    found: dict[str, FixturePatient] = {}
    for index in range(count):
        resources = list(patient_resources(index, rng=rng, anchor=FIXTURE_EPOCH, observations=40, days=6, mix=Mix()))
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
        found[f"generated-{index}"] = FixturePatient(f"generated-{index}", bundle)
    return found


def build_bulk_router(
    *,
    clock: Callable[[], datetime] | None = None,
    generated: int = GENERATED_PATIENTS,
    delay_seconds: float = 1.0,
    lines_per_file: int = LINES_PER_FILE,
) -> APIRouter:
    now = clock or (lambda: datetime.now(UTC))
    groups: dict[str, dict[str, FixturePatient]] = {}

    def group_members(name: str) -> dict[str, FixturePatient] | None:
        if not groups:  # built on the first export, not at start-up (cold start)
            fixtures = load_patients()
            population = generated_population(generated) if generated else {}
            groups.update({"all": {**fixtures, **population}, "fixtures": fixtures, "generated": population})
        return groups.get(name)

    jobs: dict[str, Job] = {}
    lock = threading.Lock()
    router = APIRouter()

    async def kick_off(request: Request, group: str | None) -> Response:
        if "respond-async" not in request.headers.get("prefer", ""):
            return _outcome(400, "the Prefer: respond-async header is required", "required")
        params = list(request.query_params.multi_items())
        if request.method == "POST":
            body = await request.body()
            if body:
                parameters = _post_parameters(body)
                if parameters is None:
                    return _outcome(400, "the POST body must be a FHIR Parameters resource", "invalid")
                params += parameters
        members = group_members(group or "all")
        if members is None:
            return _outcome(404, f"Group/{group} not found", "not-found")
        try:
            plan = _plan(params)
        except ValueError as error:
            return _outcome(400, str(error), "not-supported")
        with lock:
            if len(jobs) >= MAX_JOBS:
                return _outcome(429, "too many export jobs: delete finished ones", "too-costly")
            moment = now()
            job = Job(
                id=uuid.uuid4().hex,
                request=str(request.url),
                created=time.monotonic(),
                ready_at=time.monotonic() + delay_seconds,
                transaction_time=moment.isoformat(),
            )
            _write_files(job, members, moment, plan, lines_per_file)
            jobs[job.id] = job
        base = str(request.base_url).rstrip("/") + _prefix(request)
        return Response(status_code=202, headers={"Content-Location": f"{base}/$export-status/{job.id}"})

    @router.get("/Patient/$export")
    @router.post("/Patient/$export")
    async def patient_export(request: Request) -> Response:
        return await kick_off(request, None)

    @router.get("/Group/{group_id}/$export")
    @router.post("/Group/{group_id}/$export")
    async def group_export(group_id: str, request: Request) -> Response:
        return await kick_off(request, group_id)

    @router.get("/$export-status/{job_id}")
    async def status(job_id: str, request: Request) -> Response:
        job = jobs.get(job_id)
        if job is None:
            return _outcome(404, "no such export job", "not-found")
        remaining = job.ready_at - time.monotonic()
        if remaining > 0:
            done = 1 - remaining / max(job.ready_at - job.created, 1e-9)
            return Response(
                status_code=202,
                headers={"Retry-After": str(max(1, round(remaining))), "X-Progress": f"{done:.0%} complete"},
            )
        base = str(request.base_url).rstrip("/") + _prefix(request)
        manifest = {
            "transactionTime": job.transaction_time,
            "request": job.request,
            "requiresAccessToken": False,
            "output": [
                {"type": kind, "url": f"{base}/$export-file/{job.id}/{name}", "count": content.count(b"\n")}
                for name, (kind, content) in job.files.items()
            ],
            "error": [],
        }
        return Response(orjson.dumps(manifest), status_code=200, media_type="application/json")

    @router.delete("/$export-status/{job_id}")
    async def cancel(job_id: str) -> Response:
        with lock:
            job = jobs.pop(job_id, None)
        if job is None:
            return _outcome(404, "no such export job", "not-found")
        return Response(status_code=202)

    @router.get("/$export-file/{job_id}/{name}")
    async def file(job_id: str, name: str) -> Response:
        job = jobs.get(job_id)
        found = job.files.get(name) if job and time.monotonic() >= job.ready_at else None
        if found is None:
            return _outcome(404, "no such file", "not-found")
        return Response(found[1], media_type="application/fhir+ndjson")

    return router


@dataclass(frozen=True)
class _Plan:
    types: tuple[str, ...]
    since: datetime | None
    filters: dict[str, list[list[tuple[str, str]]]]


def _plan(params: list[tuple[str, str]]) -> _Plan:
    types: list[str] = []
    since: datetime | None = None
    filters: dict[str, list[list[tuple[str, str]]]] = {}
    for name, value in params:
        if name == "_outputFormat":
            if value not in NDJSON_FORMATS:
                raise ValueError(f"_outputFormat {value!r} is not supported (application/fhir+ndjson)")
        elif name == "_type":
            for kind in (v.strip() for v in value.split(",") if v.strip()):
                if kind not in EXPORT_TYPES:
                    raise ValueError(f"_type {kind} is not exported by this server ({', '.join(EXPORT_TYPES)})")
                types.append(kind)
        elif name == "_since":
            parsed = parse_fhir_time(value)
            if parsed is None or not parsed.is_instant:
                raise ValueError("_since must be a FHIR instant with a time zone")
            since = parsed.earliest
        elif name == "_typeFilter":
            # One query per parameter (v2): a query's own code lists hold commas.
            kind, _, search = value.partition("?")
            if kind not in EXPORT_TYPES or not search:
                raise ValueError(f"_typeFilter {value!r} is not a search on an exported type")
            filters.setdefault(kind, []).append(parse_qsl(search, keep_blank_values=True))
        else:
            raise ValueError(f"parameter {name} is not supported")
    return _Plan(tuple(dict.fromkeys(types)) or EXPORT_TYPES, since, filters)


def _write_files(
    job: Job, members: dict[str, FixturePatient], moment: datetime, plan: _Plan, lines_per_file: int
) -> None:
    resources = [r for patient in members.values() for r in patient.resources(moment)]
    store = FhirStore.of(resources)
    for kind in plan.types:
        selected = [r for r in resources if r["resourceType"] == kind]
        queries = plan.filters.get(kind)
        if queries:
            try:
                keep = {id(r) for query in queries for r in store.search(kind, query)}
            except SearchError as error:
                raise ValueError(f"_typeFilter: {error}") from error
            selected = [r for r in selected if id(r) in keep]
        if plan.since is not None:
            selected = [r for r in selected if _changed_since(r, plan.since)]
        for part, start in enumerate(range(0, len(selected), lines_per_file)):
            lines = b"".join(orjson.dumps(r) + b"\n" for r in selected[start : start + lines_per_file])
            job.files[f"{kind}.{part}.ndjson"] = (kind, lines)
        job.counts[kind] = len(selected)


def _changed_since(resource: dict[str, Any], since: datetime) -> bool:
    """Fixture resources carry no meta.lastUpdated: their clinical time stands in for it."""
    for key in ("effectiveDateTime", "issued", "recordedDate", "authoredOn"):
        stamp = parse_fhir_time(resource.get(key))
        if stamp is not None:
            return stamp.latest >= since
    return True


def _post_parameters(body: bytes) -> list[tuple[str, str]] | None:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict) or document.get("resourceType") != "Parameters":
        return None
    found: list[tuple[str, str]] = []
    for parameter in document.get("parameter", []):
        if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
            return None
        value = next((v for k, v in parameter.items() if k.startswith("value") and isinstance(v, str)), None)
        if value is None:
            return None
        found.append((parameter["name"], value))
    return found


def _prefix(request: Request) -> str:
    """The router's mount path (e.g. /sandbox/fhir), from the matched route."""
    path = request.url.path
    for marker in ("/Patient/$export", "/Group/", "/$export-status/", "/$export-file/"):
        if marker in path:
            return path.split(marker)[0]
    return ""


def _outcome(status: int, message: str, code: IssueCode) -> Response:
    return Response(build_operation_outcome([message], code=code), status_code=status, media_type=FHIR_JSON)
