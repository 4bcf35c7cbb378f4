"""One hook call as the services see it: hook, context, clock and (optional) FHIR read access."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from cds_service.fhir.client import FhirAccessError, FhirServer, ReadBudget
from cds_service.fhir.model import DecodedPayload, decode_payload
from cds_service.settings import Settings


class ContextValueError(ValueError):
    """A context field the service needs cannot be read (the transport answers 400 naming the field)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field  # e.g. "context.draftOrders"
        super().__init__(message)


@dataclass(frozen=True)
class HookCall:
    service_id: str
    hook: str
    hook_instance: str
    context: Mapping[str, msgspec.Raw]
    now: datetime
    settings: Settings
    fhir: FhirServer | None = None
    app_launch_url: str | None = None  # the SMART app's launch URL, for cards that link to it
    # The call's FHIR read budget (deadline and bytes), shared by every read of the call; one is made when absent.
    fhir_budget: ReadBudget | None = None
    # Per-call memo, so work done by a service's guard is not repeated by its handler.
    memo: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def patient_id(self) -> str:
        """`context.patientId`: the patient of the call, and the only one any card may be about.

        Every hook this service serves requires it; the transport refuses a call without it (400)."""
        value = self.context_str("patientId")
        if value is None:
            raise ValueError("context.patientId is missing")
        return value

    def context_str(self, name: str) -> str | None:
        raw = self.context.get(name)
        if raw is None:
            return None
        try:
            value = msgspec.json.decode(raw)
        except (msgspec.DecodeError, RecursionError):
            return None
        return value if isinstance(value, str) and value else None

    def context_payload(self, name: str) -> DecodedPayload | None:
        """A context field holding FHIR (draftOrders); None when absent. Raises ContextValueError when it, or
        any of its entries, cannot be read: an unreadable draft order must not pass as "no anakinra order"."""
        raw = self.context.get(name)
        if raw is None:
            return None
        payload = decode_payload(bytes(raw))
        if not payload.usable or payload.problems:
            path = f"context.{name}"
            problems = "; ".join(payload.problems) or "not a FHIR resource"
            raise ContextValueError(path, f"{path}: expected a readable FHIR Bundle, got one that is not ({problems})")
        return payload

    async def read(self, relative_reference: str) -> DecodedPayload | None:
        """Read one resource from the caller's FHIR server; None when there is none or it fails."""
        if self.fhir is None:
            return None
        try:
            body = await self.fhir.get(self.fhir.url_for(relative_reference), budget=self.budget())
        except FhirAccessError:
            return None
        return decode_payload(body)

    def budget(self) -> ReadBudget:
        if self.fhir_budget is not None:
            return self.fhir_budget
        made = self.memo.get("fhir_budget")
        if not isinstance(made, ReadBudget):
            made = self.memo["fhir_budget"] = ReadBudget.starting_now(
                self.settings.fhir_deadline_seconds, self.settings.fhir_max_call_bytes
            )
        return made
