"""The hook request envelope (CDS Hooks 2.0 §HTTP Request), decoded leniently.

Unknown keys (Epic's top-level `extension`, future fields) are ignored. `context` and `prefetch`
values stay raw bytes: only the parts a service reads are ever decoded.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

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
    pass


# msgspec's limit is Python's recursion limit, counted from the caller's stack: about 950 levels for a hook
# body. Every body nested up to this depth is decoded (tested); FHIR needs fewer than 20 levels.
GUARANTEED_NESTING = 200
TOO_DEEP = f"JSON nested too deeply (at least {GUARANTEED_NESTING} levels are accepted; FHIR needs fewer than 20)"


_DECODER = msgspec.json.Decoder(Envelope)


def decode_envelope(body: bytes) -> Envelope:
    try:
        envelope = _DECODER.decode(body)
    except msgspec.ValidationError as error:
        raise EnvelopeError(f"invalid hook request: {error}") from error
    except msgspec.DecodeError as error:
        raise EnvelopeError(f"request body is not valid JSON: {error}") from error
    except RecursionError as error:
        raise EnvelopeError(TOO_DEEP) from error
    if not envelope.hook or not envelope.hookInstance.strip():
        raise EnvelopeError("hook and hookInstance must be non-empty")
    if envelope.fhirAuthorization is not None and not envelope.fhirServer:
        raise EnvelopeError("fhirServer is required when fhirAuthorization is present (cds-r-1)")
    return envelope


def check_context(envelope: Envelope) -> dict[str, str]:
    """Check the hook's required context fields; return the primitive ones usable as tokens."""
    missing = [name for name in REQUIRED_CONTEXT.get(envelope.hook, ()) if name not in envelope.context]
    if missing:
        raise EnvelopeError(f"context for {envelope.hook} is missing: {', '.join(missing)}")
    tokens: dict[str, str] = {}
    for name in TOKEN_CONTEXT_FIELDS:
        raw = envelope.context.get(name)
        if raw is None:
            continue
        value = _decode_field(raw, name)
        if not isinstance(value, str) or not value.strip():
            raise EnvelopeError(f"context.{name} must be a non-empty string")
        tokens[name] = value
    for name in ("selections",):
        raw = envelope.context.get(name)
        if raw is not None:
            value = _decode_field(raw, name)
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise EnvelopeError(f"context.{name} must be an array of 'Type/id' strings")
    raw_orders = envelope.context.get("draftOrders")
    # The body already parsed as JSON: an object is all that is checked here, without decoding the whole
    # Bundle a second time (the service decodes it, typed, when it needs it).
    if raw_orders is not None and not bytes(raw_orders).lstrip().startswith(b"{"):
        raise EnvelopeError("context.draftOrders must be a FHIR Bundle")
    return tokens


def _decode_field(raw: msgspec.Raw, name: str) -> object:
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as error:  # pragma: no cover (the body already parsed as JSON)
        raise EnvelopeError(f"context.{name} is not valid JSON") from error
    except RecursionError as error:  # decoded from a deeper stack than the envelope was
        raise EnvelopeError(f"context.{name}: {TOO_DEEP}") from error
