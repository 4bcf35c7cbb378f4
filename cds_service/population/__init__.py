"""Population screening: the hook's MAS rules run over a FHIR Bulk Data export (NDJSON), as of a time or a
range of times, written as a worklist (CSV and FHIR List) and an alert-burden report."""
