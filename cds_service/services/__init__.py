"""CDS services: each wires facts -> rules -> cards for one hooks/*.json entry."""
