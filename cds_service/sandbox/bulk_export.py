"""FHIR Bulk Data `$export` (Bulk Data Access IG v2) over the sandbox patients: the fixture patients plus a
generated population, every time shifted to "now" at kick-off. Sandbox only, no authentication.

    GET|POST [base]/Patient/$export, [base]/Group/[id]/$export   (Prefer: respond-async)  -> 202 Content-Location
    GET      [base]/$export-status/[job]   -> 202 + Retry-After while running, 200 + manifest when complete
    DELETE   [base]/$export-status/[job]   -> 202 (cancelled and deleted)
    GET      [base]/$export-file/[job]/[name]  -> application/fhir+ndjson

Groups: `all`, `fixtures`, `generated`. Parameters: `_outputFormat`, `_type`, `_since`, `_typeFilter` (the
sandbox store's search subset), `_elements`, `patient` (POST) and `includeAssociatedData` (the Provenance
sets, empty here: no Provenance is held). Others are refused with 400 and an OperationOutcome, or, with
`Prefer: handling=lenient`, ignored and reported in the manifest's `error` files.
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
ASSOCIATED_DATA = frozenset({"LatestProvenanceResources", "RelevantProvenanceResources"})
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
    errors: dict[str, bytes] = field(default_factory=dict)  # name -> OperationOutcome NDJSON
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
        prefer = request.headers.get("prefer", "")
        if "respond-async" not in prefer:
            return _outcome(400, "the Prefer: respond-async header is required", "required")
        accept = request.headers.get("accept", "")
        if "application/fhir+json" not in accept:  # the IG: required, and the only value supported
            return _outcome(400, "the Accept header must be application/fhir+json", "required")
        lenient = "handling=lenient" in prefer
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
            plan = _plan(params, lenient=lenient, now=now(), members=members)
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
            try:
                ignored = [*plan.ignored, *_write_files(job, members, moment, plan, lines_per_file, lenient)]
            except ValueError as error:  # a _typeFilter the store cannot run
                return _outcome(400, str(error), "not-supported")
            if ignored:
                job.errors["errors.ndjson"] = b"".join(
                    build_operation_outcome([message], code="not-supported", severity="warning") + b"\n"
                    for message in ignored
                )
            # The simulated export time counts from the answer, not from the start of building the files.
            job.created = time.monotonic()
            job.ready_at = job.created + delay_seconds
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
            return _outcome(404, "no such export job", "not-found", _media(request))
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
            "error": [
                {"type": "OperationOutcome", "url": f"{base}/$export-file/{job.id}/{name}"} for name in job.errors
            ],
        }
        return Response(orjson.dumps(manifest), status_code=200, media_type="application/json")

    @router.delete("/$export-status/{job_id}")
    async def cancel(job_id: str, request: Request) -> Response:
        with lock:
            job = jobs.pop(job_id, None)
        if job is None:
            return _outcome(404, "no such export job", "not-found", _media(request))
        return Response(status_code=202)

    @router.get("/$export-file/{job_id}/{name}")
    async def file(job_id: str, name: str, request: Request) -> Response:
        job = jobs.get(job_id)
        ready = job is not None and time.monotonic() >= job.ready_at
        found = job.files.get(name) if job and ready else None
        content = found[1] if found else (job.errors.get(name) if job and ready else None)
        if content is None:
            return _outcome(404, "no such file", "not-found", _media(request))
        return Response(content, media_type="application/fhir+ndjson")

    return router


@dataclass(frozen=True)
class _Plan:
    types: tuple[str, ...]
    since: datetime | None
    filters: dict[str, list[list[tuple[str, str]]]]
    elements: dict[str, set[str]]  # resource type ("*": any) -> top-level elements to keep
    patients: frozenset[str] | None  # the `patient` parameter (POST)
    ignored: tuple[str, ...] = ()  # unsupported parameters ignored under handling=lenient


def _plan(params: list[tuple[str, str]], *, lenient: bool, now: datetime, members: dict[str, FixturePatient]) -> _Plan:
    types: list[str] = []
    since: datetime | None = None
    filters: dict[str, list[list[tuple[str, str]]]] = {}
    elements: dict[str, set[str]] = {}
    patients: set[str] = set()
    ignored: list[str] = []

    def unsupported(message: str) -> None:
        if not lenient:
            raise ValueError(message)
        ignored.append(f"ignored (handling=lenient): {message}")

    known_patients = {patient.patient_id for patient in members.values()}
    for name, value in params:
        if name == "_outputFormat":
            if value not in NDJSON_FORMATS:
                raise ValueError(f"_outputFormat {value!r} is not supported (application/fhir+ndjson)")
        elif name == "_type":
            for kind in (v.strip() for v in value.split(",") if v.strip()):
                if kind not in EXPORT_TYPES:
                    unsupported(f"_type {kind} is not exported by this server ({', '.join(EXPORT_TYPES)})")
                    continue
                types.append(kind)
        elif name == "_since":
            parsed = parse_fhir_time(value)
            if parsed is None or not parsed.is_instant:
                raise ValueError("_since must be a FHIR instant with a time zone")
            if parsed.earliest > now:
                raise ValueError("_since is in the future")
            since = parsed.earliest
        elif name == "_typeFilter":
            # One query per parameter (v2): a query's own code lists hold commas.
            kind, _, search = value.partition("?")
            if kind not in EXPORT_TYPES or not search:
                raise ValueError(f"_typeFilter {value!r} is not a search on an exported type")
            filters.setdefault(kind, []).append(parse_qsl(search, keep_blank_values=True))
        elif name == "_elements":
            for item in (v.strip() for v in value.split(",") if v.strip()):
                kind, _, element = item.rpartition(".")
                elements.setdefault(kind or "*", set()).add(element)
        elif name == "includeAssociatedData":
            # No Provenance is held here: the provenance sets are supported and empty.
            for item in (v.strip() for v in value.split(",") if v.strip()):
                if item not in ASSOCIATED_DATA:
                    unsupported(f"includeAssociatedData {item} is not supported")
        elif name == "patient":
            patient = value.rsplit("/", 1)[-1]
            if patient not in known_patients:
                unsupported(f"patient {value} is not in this export's group")
                continue
            patients.add(patient)
        else:
            unsupported(f"parameter {name} is not supported")
    return _Plan(
        tuple(dict.fromkeys(types)) or EXPORT_TYPES,
        since,
        filters,
        elements,
        frozenset(patients) if patients else None,
        tuple(ignored),
    )


def _subset(resource: dict[str, Any], elements: dict[str, set[str]]) -> dict[str, Any]:
    """`_elements`: the listed top-level elements plus the mandatory ones, tagged SUBSETTED."""
    keep = elements.get("*", set()) | elements.get(resource["resourceType"], set())
    if not keep:
        return resource
    kept = {k: v for k, v in resource.items() if k in keep or k in ("resourceType", "id", "meta")}
    meta = dict(kept.get("meta", {}))
    tag = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
    meta["tag"] = [*meta.get("tag", []), tag]
    kept["meta"] = meta
    return kept


def _write_files(
    job: Job, members: dict[str, FixturePatient], moment: datetime, plan: _Plan, lines_per_file: int, lenient: bool
) -> list[str]:
    """The job's NDJSON files; returns the _typeFilter queries ignored under handling=lenient."""
    ignored: list[str] = []
    chosen = [p for p in members.values() if plan.patients is None or p.patient_id in plan.patients]
    resources = [r for patient in chosen for r in patient.resources(moment)]
    store = FhirStore.of(resources)
    for kind in plan.types:
        selected = [r for r in resources if r["resourceType"] == kind]
        queries = plan.filters.get(kind)
        keep: set[int] = set()
        usable = 0
        for query in queries or ():
            try:
                keep |= {id(r) for r in store.search(kind, query)}
                usable += 1
            except SearchError as error:
                if not lenient:
                    raise ValueError(f"_typeFilter: {error}") from error
                ignored.append(f"ignored (handling=lenient): _typeFilter on {kind}: {error}")
        if usable:  # several queries of one type: resources matching any of them
            selected = [r for r in selected if id(r) in keep]
        if plan.since is not None:
            selected = [r for r in selected if _changed_since(r, plan.since)]
        for part, start in enumerate(range(0, len(selected), lines_per_file)):
            part_lines = selected[start : start + lines_per_file]
            lines = b"".join(orjson.dumps(_subset(r, plan.elements)) + b"\n" for r in part_lines)
            job.files[f"{kind}.{part}.ndjson"] = (kind, lines)
        job.counts[kind] = len(selected)
    return ignored


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
        reference = parameter.get("valueReference")
        if value is None and isinstance(reference, dict) and isinstance(reference.get("reference"), str):
            value = reference["reference"]
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


def _media(request: Request) -> str:
    """application/json when the client asked for exactly that (some clients parse only it), else FHIR JSON."""
    accept = request.headers.get("accept", "")
    return "application/json" if "application/json" in accept and "fhir+json" not in accept else FHIR_JSON


def _outcome(status: int, message: str, code: IssueCode, media_type: str = FHIR_JSON) -> Response:
    return Response(build_operation_outcome([message], code=code), status_code=status, media_type=media_type)
