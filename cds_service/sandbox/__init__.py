"""Sandbox: fixture patients, an in-memory FHIR store and hook requests built from them."""
