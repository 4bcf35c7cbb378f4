"""FHIR R4 input: a typed subset decoded with msgspec, and prefetch/FHIR-server access."""
