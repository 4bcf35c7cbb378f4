"""Assessments -> CDS Hooks cards and suggested FHIR resources (built and validated with fhir.resources)."""
