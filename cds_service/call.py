"""One hook call as the services see it: hook, context, clock and (optional) FHIR read access."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import msgspec

from cds_service.fhir.client import FhirAccessError, FhirServer
from cds_service.fhir.model import DecodedPayload, decode_payload


@dataclass(frozen=True)
class HookCall:
    service_id: str
    hook: str
    hook_instance: str
    context: Mapping[str, msgspec.Raw]
    now: datetime
    fhir: FhirServer | None = None
    fhir_timeout_seconds: float = 2.0

    def context_str(self, name: str) -> str | None:
        raw = self.context.get(name)
        if raw is None:
            return None
        try:
            value = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            return None
        return value if isinstance(value, str) and value else None

    def context_payload(self, name: str) -> DecodedPayload | None:
        """A context field holding FHIR (draftOrders), decoded leniently; None when absent."""
        raw = self.context.get(name)
        return None if raw is None else decode_payload(bytes(raw))

    async def read(self, relative_reference: str) -> DecodedPayload | None:
        """Read one resource from the caller's FHIR server; None when there is none or it fails."""
        if self.fhir is None:
            return None
        try:
            body = await self.fhir.get(
                self.fhir.url_for(relative_reference), timeout=self.fhir_timeout_seconds
            )
        except FhirAccessError:
            return None
        return decode_payload(body)
