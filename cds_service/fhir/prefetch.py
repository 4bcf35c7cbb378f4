"""Prefetch first, then the FHIR server, else 412 (CDS Hooks 2.0 §Prefetch, §FHIR Resource Access).

Per declared key:
- provided value: used; a Bundle's `next` pages are followed on the fhirServer (capped);
- `null`: the client has no data, so nothing is fetched;
- missing, a whole OperationOutcome, or a value that is not usable FHIR of the kind the template asks
  for (`1`, `[]`, `{}`, a malformed resource, a Patient where a search Bundle belongs): fetched from the
  fhirServer with the bearer token; an unusable answer from the server counts as no answer;
- a Bundle with some unreadable entries: used, marked incomplete, the entries' problems noted;
- still unavailable: a required key makes the call fail with 412; an optional one is reported
  so the cards can say what could not be checked.
All fetches of one call run in parallel under one ReadBudget: a deadline and a byte budget (fhir/client.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

import msgspec

from cds_service.fhir.client import FhirAccessError, FhirServer, ReadBudget
from cds_service.fhir.identity import names_other_patient
from cds_service.fhir.model import DecodedPayload, OperationOutcome, Resource, decode_payload
from cds_service.fhir.templates import encoded_query, render_template


class KeyStatus(Enum):
    PROVIDED = "provided"
    FETCHED = "fetched"
    NO_DATA = "no data"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class PrefetchSpec:
    key: str
    template: str
    required: bool


@dataclass(frozen=True)
class KeyData:
    key: str
    status: KeyStatus
    resources: tuple[Resource, ...] = ()
    notes: tuple[str, ...] = ()
    complete: bool = True
    other_patient: int = 0  # resources about another patient that were dropped (never used)

    @property
    def available(self) -> bool:
        return self.status is not KeyStatus.UNAVAILABLE


class UndeclaredPrefetchKeyError(KeyError):
    """A handler read a key its hooks file does not declare: a programming error, caught by tests."""


@dataclass(frozen=True)
class ServiceData:
    """The data of one call, by prefetch key. Reading an undeclared key raises."""

    items: Mapping[str, KeyData]

    def __getitem__(self, key: str) -> KeyData:
        if key not in self.items:
            raise UndeclaredPrefetchKeyError(key)
        return self.items[key]

    def other_patient_keys(self) -> dict[str, int]:
        """Keys that held resources about another patient, with how many were dropped (for the audit)."""
        return {key: data.other_patient for key, data in self.items.items() if data.other_patient}


class RequiredDataUnavailableError(Exception):
    def __init__(self, messages: Sequence[str], other_patient: Mapping[str, int] | None = None) -> None:
        super().__init__("; ".join(messages))
        self.messages = tuple(messages)
        self.other_patient = dict(other_patient or {})


@dataclass
class _Pending:
    spec: PrefetchSpec
    url: str | None  # first URL to get; None when no query could be made
    resources: list[Resource] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    provided: bool = False
    other_patient: int = 0
    complete: bool = True  # False once an entry could not be read


async def resolve_prefetch(
    specs: Sequence[PrefetchSpec],
    prefetch: Mapping[str, msgspec.Raw] | None,
    context: Mapping[str, str],
    server: FhirServer | None,
    *,
    budget: ReadBudget,
    max_pages: int,
    no_server_reason: str = "no fhirServer in the request",
) -> ServiceData:
    items: dict[str, KeyData] = {}
    pending: list[_Pending] = []
    patient_id = context.get("patientId")
    for spec in specs:
        raw = prefetch.get(spec.key) if prefetch is not None else None
        if raw is None:
            pending.append(_Pending(spec, _first_url(spec, context, server)))
            continue
        raw_bytes = bytes(raw)
        if raw_bytes.strip() == b"null":
            items[spec.key] = KeyData(spec.key, KeyStatus.NO_DATA)
            continue
        payload = decode_payload(raw_bytes)
        notes = _notes(payload)
        unusable = _unusable_reason(payload, spec)
        if payload.whole_is_outcome or unusable is not None:
            # STU2: an OperationOutcome in place of the data means the client could not get it; a value that
            # cannot be read is no better: the data is missing, never "none".
            reasons = notes if unusable is None else [unusable]
            job = _Pending(spec, _first_url(spec, context, server), notes=[f"prefetch: {n}" for n in reasons])
            pending.append(job)
            continue
        complete = not payload.problems
        resources, other = _about_patient(payload.resources, patient_id)
        if other:
            notes.append(f"{other} prefetched resource(s) about another patient were not used")
            if not resources:
                # Everything sent under this key is about someone else: the key is missing, not empty.
                job = _Pending(spec, _first_url(spec, context, server), notes=notes, other_patient=other)
                pending.append(job)
                continue
        if payload.next_url is None:
            items[spec.key] = KeyData(
                spec.key, KeyStatus.PROVIDED, resources, tuple(notes), complete, other_patient=other
            )
            continue
        job = _Pending(
            spec, payload.next_url, list(resources), notes, provided=True, other_patient=other, complete=complete
        )
        pending.append(job)

    if pending:
        results = await _run_all(
            pending, server, patient_id, budget=budget, max_pages=max_pages, no_server_reason=no_server_reason
        )
        items.update(results)

    missing = [
        f"required data '{key}' could not be obtained: {'; '.join(data.notes) or 'not provided'}"
        for key, data in items.items()
        if data.status is KeyStatus.UNAVAILABLE and _spec(specs, key).required
    ]
    data = ServiceData(items)
    if missing:
        raise RequiredDataUnavailableError(missing, data.other_patient_keys())
    return data


def _spec(specs: Sequence[PrefetchSpec], key: str) -> PrefetchSpec:
    return next(spec for spec in specs if spec.key == key)


def _first_url(spec: PrefetchSpec, context: Mapping[str, str], server: FhirServer | None) -> str | None:
    if server is None:
        return None
    # Query values percent-encoded: the same search to any FHIR server, and safe through proxies that rewrite
    # "//" in a URL (a code system such as http://loinc.org would otherwise become http:/loinc.org).
    query = render_template(encoded_query(spec.template), context)
    return None if query is None else server.url_for(query)


def _acceptable_kinds(template: str) -> frozenset[str]:
    """A search template ("Observation?...") answers with a Bundle; a read ("Patient/{{...}}") with that
    resource, or a Bundle holding it (some clients send reads as a searchset)."""
    path = template.split("?", 1)[0]
    if "?" in template or "/" not in path:
        return frozenset({"Bundle"})
    return frozenset({"Bundle", path.split("/", 1)[0]})


def _unusable_reason(payload: DecodedPayload, spec: PrefetchSpec) -> str | None:
    """Why a value (prefetched or fetched) cannot stand for this key's data; None when it can."""
    if not payload.usable:
        return "not readable as FHIR (" + "; ".join(payload.problems) + ")"
    if payload.whole_is_outcome:
        return None
    acceptable = _acceptable_kinds(spec.template)
    if payload.kind not in acceptable:
        return f"a {payload.kind}, where {' or '.join(sorted(acceptable))} was expected"
    return None


def _notes(payload: DecodedPayload) -> list[str]:
    notes = list(payload.problems)
    notes.extend(_outcome_text(outcome) for outcome in payload.outcomes)
    return [note for note in notes if note]


def _outcome_text(outcome: OperationOutcome) -> str:
    texts = [
        issue.diagnostics or (issue.details.text if issue.details else None) or issue.code or ""
        for issue in outcome.issue
    ]
    return "OperationOutcome: " + ", ".join(text for text in texts if text)


async def _run_all(
    pending: list[_Pending],
    server: FhirServer | None,
    patient_id: str | None,
    *,
    budget: ReadBudget,
    max_pages: int,
    no_server_reason: str,
) -> dict[str, KeyData]:
    tasks = {
        asyncio.ensure_future(
            _fetch(job, server, patient_id, budget=budget, max_pages=max_pages, no_server_reason=no_server_reason)
        ): job
        for job in pending
    }
    done, not_done = await asyncio.wait(tasks, timeout=max(0.0, budget.seconds_left()))
    for task in not_done:
        task.cancel()
    if not_done:
        await asyncio.gather(*not_done, return_exceptions=True)
    results: dict[str, KeyData] = {}
    for task, job in tasks.items():
        if task in done and task.exception() is None:
            results[job.spec.key] = task.result()
        else:
            reason = "FHIR server did not answer within the deadline" if task in not_done else "query failed"
            results[job.spec.key] = _partial_or_unavailable(job, reason)
    return results


async def _fetch(
    job: _Pending,
    server: FhirServer | None,
    patient_id: str | None,
    *,
    budget: ReadBudget,
    max_pages: int,
    no_server_reason: str,
) -> KeyData:
    if server is None or job.url is None:
        reason = no_server_reason if server is None else "a prefetch token has no value"
        return _partial_or_unavailable(job, reason)
    url: str | None = job.url
    pages = 0
    while url is not None:
        if pages >= max_pages:
            job.notes.append(f"stopped after {max_pages} pages; later results not read")
            return _keydata(job, complete=False)
        if pages and budget.seconds_left() <= 0:  # decoding the last page used up the deadline
            job.notes.append("deadline reached; later results not read")
            return _keydata(job, complete=False)
        try:
            body = await server.get(url, budget=budget)
        except FhirAccessError as error:
            return _partial_or_unavailable(job, str(error))
        payload = decode_payload(body)
        if payload.whole_is_outcome:
            return _partial_or_unavailable(job, "; ".join(_notes(payload)) or "OperationOutcome")
        unusable = _unusable_reason(payload, job.spec)
        if unusable is not None:  # garbage with HTTP 200 is no answer
            return _partial_or_unavailable(job, f"FHIR server answer: {unusable}")
        job.complete = job.complete and not payload.problems
        resources, other = _about_patient(payload.resources, patient_id)
        if other:
            job.other_patient += other
            job.notes.append(f"{other} resource(s) from the FHIR server about another patient were not used")
        job.resources.extend(resources)
        job.notes.extend(_notes(payload))
        url = payload.next_url
        pages += 1
    return _keydata(job)


def _about_patient(resources: tuple[Resource, ...], patient_id: str | None) -> tuple[tuple[Resource, ...], int]:
    """The resources about the call's patient, and how many named another patient (dropped)."""
    if patient_id is None:
        return resources, 0
    kept = tuple(resource for resource in resources if not names_other_patient(resource, patient_id))
    return kept, len(resources) - len(kept)


def _keydata(job: _Pending, *, complete: bool = True) -> KeyData:
    if job.other_patient and not job.resources:
        return _partial_or_unavailable(job, "only data about another patient was found")
    status = KeyStatus.PROVIDED if job.provided else KeyStatus.FETCHED
    return KeyData(
        job.spec.key,
        status,
        tuple(job.resources),
        tuple(job.notes),
        complete and job.complete,
        other_patient=job.other_patient,
    )


def _partial_or_unavailable(job: _Pending, reason: str) -> KeyData:
    notes = (*job.notes, reason)
    if job.provided:
        # The first page came with the request; later pages could not be read.
        return KeyData(
            job.spec.key,
            KeyStatus.PROVIDED,
            tuple(job.resources),
            notes,
            complete=False,
            other_patient=job.other_patient,
        )
    return KeyData(job.spec.key, KeyStatus.UNAVAILABLE, (), notes, other_patient=job.other_patient)
