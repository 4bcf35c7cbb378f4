"""Clinical rules: pure functions from typed facts to assessments. No I/O, no HTTP, no FHIR JSON."""
