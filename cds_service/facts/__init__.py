"""FHIR JSON -> small typed facts. The only package that knows FHIR paths, codes and units."""
