"""The hook request envelope (CDS Hooks 2.0 §HTTP Request), decoded leniently.

Unknown keys (Epic's top-level `extension`, future fields) are ignored. `context` and `prefetch`
values stay raw bytes: only the parts a service reads are ever decoded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from cds_service.spec.field_errors import field_issue, json_type
from cds_service.spec.operation_outcome import Issue

# Context fields every call of the hook must carry (HL7 CDS Hooks library 1.0.1).
REQUIRED_CONTEXT: Mapping[str, tuple[str, ...]] = {
    "patient-view": ("userId", "patientId"),
    "order-select": ("userId", "patientId", "selections", "draftOrders"),
    "order-sign": ("userId", "patientId", "draftOrders"),
}
TOKEN_CONTEXT_FIELDS = ("patientId", "userId", "encounterId")


class FhirAuthorization(msgspec.Struct):
    access_token: str
    token_type: str | None = None
    expires_in: int | None = None
    scope: str | None = None
    subject: str | None = None
    patient: str | None = None


class Envelope(msgspec.Struct):
    hook: str
    hookInstance: str  # noqa: N815 (spec field name)
    context: dict[str, msgspec.Raw]
    fhirServer: str | None = None  # noqa: N815
    fhirAuthorization: FhirAuthorization | None = None  # noqa: N815
    prefetch: dict[str, msgspec.Raw] | None = None

    def __repr__(self) -> str:  # never let a token reach a log through repr()
        return f"Envelope(hook={self.hook!r}, hookInstance={self.hookInstance!r})"


class EnvelopeError(ValueError):
    """The request does not match CDS Hooks: one Issue per field at fault (path, what was expected)."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = tuple(issues)
        super().__init__("; ".join(issue.diagnostics for issue in self.issues))


# msgspec's limit is Python's recursion limit, counted from the caller's stack: about 950 levels for a hook
# body. Every body nested up to this depth is decoded (tested); FHIR needs fewer than 20 levels.
GUARANTEED_NESTING = 200
TOO_DEEP = f"JSON nested too deeply (at least {GUARANTEED_NESTING} levels are accepted; FHIR needs fewer than 20)"


_DECODER = msgspec.json.Decoder(Envelope)
REQUIRED_FIELDS = ("hook", "hookInstance", "context")
# What each field must hold (CDS Hooks 2.0 §HTTP Request; HL7 CDS Hooks library 1.0.1 for context).
EXPECTED: Mapping[str, str] = {
    "hook": 'the hook\'s name as a string (e.g. "patient-view")',
    "hookInstance": "a string (a UUID for this hook invocation)",
    "context": "an object holding the hook's context fields",
    "fhirServer": "the FHIR server's base URL as a string",
    "fhirAuthorization": "an object with access_token, token_type, expires_in, scope and subject",
    "fhirAuthorization.access_token": "the OAuth 2.0 access token as a string",
    "fhirAuthorization.token_type": 'a string ("Bearer")',
    "fhirAuthorization.expires_in": "the token's lifetime in seconds as an integer",
    "fhirAuthorization.scope": "the granted scopes as a string",
    "fhirAuthorization.subject": "the client id as a string",
    "fhirAuthorization.patient": "a patient id as a string",
    "prefetch": "an object mapping prefetch keys to FHIR resources (or null)",
    "context.userId": 'the user\'s FHIR reference as a string (e.g. "Practitioner/123")',
    "context.patientId": "the FHIR id of the patient in context as a string",
    "context.encounterId": "the FHIR id of the encounter as a string",
    "context.selections": 'an array of references to the selected draft orders (e.g. ["MedicationRequest/123"])',
    "context.draftOrders": "a FHIR Bundle (an object) holding the draft orders",
}


def decode_envelope(body: bytes) -> Envelope:
    try:
        envelope = _DECODER.decode(body)
    except msgspec.ValidationError as error:
        raise EnvelopeError(_diagnose(body, error)) from error
    except msgspec.DecodeError as error:
        raise EnvelopeError([Issue(f"request body: not valid JSON ({error})", None, "structure")]) from error
    except RecursionError as error:
        raise EnvelopeError([Issue(f"request body: not valid JSON here ({TOO_DEEP})", None, "structure")]) from error
    empty = [name for name in ("hook", "hookInstance") if not getattr(envelope, name).strip()]
    if empty:
        raise EnvelopeError(
            [Issue(f"{name}: expected {EXPECTED[name]}, got an empty string", name, "value") for name in empty]
        )
    if envelope.fhirAuthorization is not None and not envelope.fhirServer:
        raise EnvelopeError(
            [
                Issue(
                    "fhirServer: missing; expected the FHIR server's base URL, required when fhirAuthorization "
                    "is present (CDS Hooks 2.0, cds-r-1)",
                    "fhirServer",
                    "required",
                )
            ]
        )
    return envelope


def _diagnose(body: bytes, error: msgspec.ValidationError) -> list[Issue]:
    """Every missing top-level field at once; otherwise the first mismatch msgspec found, with its path.

    Runs only for a request that already failed, so the second parse costs a valid call nothing."""
    try:
        document = msgspec.json.decode(body)
    except msgspec.DecodeError as decode_error:  # typed decoding stops at the first wrong type, before the end
        return [Issue(f"request body: not valid JSON ({decode_error})", None, "structure")]
    if not isinstance(document, dict):
        return [
            Issue(
                f"request body: expected a JSON object with {', '.join(REQUIRED_FIELDS)}, got {json_type(document)}",
                None,
                "structure",
            )
        ]
    missing = [name for name in REQUIRED_FIELDS if name not in document]
    if missing:
        return [Issue(f"{name}: missing; expected {EXPECTED[name]}", name, "required") for name in missing]
    return [field_issue(error, expectations=EXPECTED)]


def check_context(envelope: Envelope) -> dict[str, str]:
    """Check the hook's required context fields; return the primitive ones usable as tokens.

    Every problem is reported at once, each with its field's path and what the hook expects there."""
    hook = envelope.hook
    issues = [
        Issue(f"context.{name}: missing; {hook} requires {EXPECTED[f'context.{name}']}", f"context.{name}", "required")
        for name in REQUIRED_CONTEXT.get(hook, ())
        if name not in envelope.context
    ]
    tokens: dict[str, str] = {}
    for name in TOKEN_CONTEXT_FIELDS:
        raw = envelope.context.get(name)
        if raw is None:
            continue
        value = _decode_field(raw, "context." + name)
        if isinstance(value, str) and value.strip():
            tokens[name] = value
        else:
            got = "an empty string" if isinstance(value, str) else json_type(value)
            issues.append(_wrong("context." + name, got))
    raw_selections = envelope.context.get("selections")
    if raw_selections is not None:
        selections = _decode_field(raw_selections, "context.selections")
        if not isinstance(selections, list):
            issues.append(_wrong("context.selections", json_type(selections)))
        else:
            issues += [
                _wrong(
                    f"context.selections[{index}]",
                    json_type(item),
                    'a reference string such as "MedicationRequest/123"',
                )
                for index, item in enumerate(selections)
                if not isinstance(item, str)
            ]
    raw_orders = envelope.context.get("draftOrders")
    # An object is all that is checked here, without decoding the whole Bundle a second time (the service
    # decodes it, typed, when it needs it).
    if raw_orders is not None and not bytes(raw_orders).lstrip().startswith(b"{"):
        issues.append(_wrong("context.draftOrders", json_type(msgspec.json.decode(raw_orders))))
    if issues:
        raise EnvelopeError(issues)
    return tokens


def _decode_field(raw: msgspec.Raw, path: str) -> object:
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as error:  # pragma: no cover (the body already parsed as JSON)
        raise EnvelopeError([Issue(f"{path}: not valid JSON ({error})", path, "structure")]) from error
    except RecursionError as error:  # decoded from a deeper stack than the envelope was
        raise EnvelopeError([Issue(f"{path}: not valid JSON here ({TOO_DEEP})", path, "structure")]) from error


def _wrong(path: str, got: str, expected: str | None = None) -> Issue:
    return Issue(f"{path}: expected {expected or EXPECTED[path]}, got {got}", path, "structure")
