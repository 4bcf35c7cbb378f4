"""A small FHIR R4 REST server over the fixture patients: read, search (patient, code, date, status,
category, _sort, _count, paging) by GET or by `POST [type]/_search` with a form-encoded body (FHIR R4
http.html#search; the official CDS Hooks sandbox tries POST first), and metadata. Times are shifted to
"now" at every request.

Mounted at /sandbox/fhir in sandbox mode, and runnable alone with `cds-service fhir-server`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from cds_service import __version__
from cds_service.sandbox.fixtures import FixturePatient, load_patients
from cds_service.sandbox.store import SEARCHABLE, FhirStore, SearchError
from cds_service.spec.operation_outcome import IssueCode, build_operation_outcome

FHIR_JSON = "application/fhir+json"
FORM = "application/x-www-form-urlencoded"
MAX_SEARCH_BODY_BYTES = 65536


def _json(document: object, status: int = 200) -> Response:
    return Response(orjson.dumps(document), status_code=status, media_type=FHIR_JSON)


def _outcome(status: int, message: str, code: IssueCode) -> Response:
    return Response(build_operation_outcome([message], code=code), status_code=status, media_type=FHIR_JSON)


# Bulk Data Access IG 2.0: what a server offering $export declares (sandbox mode mounts the export beside us).
BULK_DATA_CAPABILITY = "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"
BULK_EXPORT_OPERATIONS = (
    {"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"},
    {"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"},
)


def build_fhir_router(
    patients: dict[str, FixturePatient] | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    bulk_export: bool = False,
) -> APIRouter:
    """`bulk_export`: the sandbox's $export is mounted under the same base, and the CapabilityStatement says so."""
    fixtures = patients if patients is not None else load_patients()
    now = clock or (lambda: datetime.now(UTC))
    router = APIRouter()

    def store() -> FhirStore:
        moment = now()
        return FhirStore.of(r for patient in fixtures.values() for r in patient.resources(moment))

    @router.get("/metadata")
    async def metadata() -> Response:
        exports: dict[str, object] = {"instantiates": [BULK_DATA_CAPABILITY]} if bulk_export else {}
        return _json(
            {
                "resourceType": "CapabilityStatement",
                **exports,
                "status": "active",
                "date": now().date().isoformat(),
                "kind": "instance",
                "software": {"name": "MAS CDS sandbox FHIR server", "version": __version__},
                "fhirVersion": "4.0.1",
                "format": ["json"],
                "rest": [
                    {
                        "mode": "server",
                        "resource": [
                            {
                                "type": kind,
                                "interaction": [{"code": "read"}, {"code": "search-type"}],
                                "searchParam": [
                                    {"name": name, "type": kind_of}
                                    for name, kind_of in (
                                        ("patient", "reference"),
                                        ("code", "token"),
                                        ("date", "date"),
                                        ("status", "token"),
                                        ("category", "token"),
                                        ("clinical-status", "token"),
                                        ("_count", "number"),
                                        ("_sort", "string"),
                                    )
                                ],
                            }
                            for kind in SEARCHABLE
                        ],
                        **({"operation": list(BULK_EXPORT_OPERATIONS)} if bulk_export else {}),
                    }
                ],
            }
        )

    @router.get("/{resource_type}/{resource_id}")
    async def read(resource_type: str, resource_id: str) -> Response:
        found = store().read(resource_type, resource_id)
        if found is None:
            return _outcome(404, f"{resource_type}/{resource_id} not found", "not-found")
        return _json(found)

    def searched(resource_type: str, params: list[tuple[str, str]], base: str) -> Response:
        try:
            bundle = store().search_page(resource_type, params, base_url=base)
        except SearchError as error:
            return _outcome(400, str(error), "not-supported")
        return _json(bundle)

    @router.get("/{resource_type}")
    async def search(resource_type: str, request: Request) -> Response:
        base = str(request.url).split("?")[0].rsplit("/", 1)[0]
        return searched(resource_type, list(request.query_params.multi_items()), base)

    @router.post("/{resource_type}/_search")
    async def search_by_post(resource_type: str, request: Request) -> Response:
        """Parameters from the URL and the form body together, answered as the GET search would be."""
        body = await request.body()
        if len(body) > MAX_SEARCH_BODY_BYTES:
            return _outcome(413, f"search body larger than {MAX_SEARCH_BODY_BYTES} bytes", "too-costly")
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if body.strip() and media_type != FORM:
            return _outcome(415, f"Content-Type: expected {FORM}, got {media_type or 'none'}", "not-supported")
        try:
            form = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body.strip()))
        except (UnicodeDecodeError, ValueError):
            return _outcome(400, f"search body: expected {FORM} name=value pairs", "structure")
        base = str(request.url).split("?")[0].rsplit("/", 2)[0]
        return searched(resource_type, [*request.query_params.multi_items(), *form], base)

    return router


def create_fhir_app() -> FastAPI:
    app = FastAPI(title="MAS CDS sandbox FHIR server", version=__version__, docs_url=None, redoc_url=None)
    app.include_router(build_fhir_router())
    return app
