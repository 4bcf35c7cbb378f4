"""Trusted issuers from CDS_TRUSTED_ISSUERS_FILE (JSON or YAML), validated at start-up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cds_service.startup import StartupError

# CDS Hooks 2.0: "alg: none" and symmetric algorithms SHALL NOT be used; ES384 and RS384 are RECOMMENDED.
ASYMMETRIC = frozenset({"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
DEFAULT_ALGORITHMS = ("ES384", "RS384")


class IssuerConfigError(StartupError):
    pass


class TrustedIssuer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    iss: str = Field(min_length=1)
    jwks_url: str | None = None
    jwks: dict[str, Any] | None = None
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    audience: str | list[str] | None = None  # Epic configures `aud` by hand: an override per issuer
    tenant: str | None = None
    fhir_servers: tuple[str, ...] = ()

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, algorithms: tuple[str, ...]) -> tuple[str, ...]:
        refused = [a for a in algorithms if a not in ASYMMETRIC]
        if refused or not algorithms:
            raise ValueError(f"only asymmetric algorithms are allowed ({sorted(ASYMMETRIC)}); refused {refused}")
        return algorithms

    @field_validator("jwks_url")
    @classmethod
    def _https_jwks(cls, url: str | None) -> str | None:
        if url is not None and urlsplit(url).scheme != "https":
            raise ValueError("jwks_url must be https")
        return url

    @field_validator("fhir_servers")
    @classmethod
    def _normalised(cls, servers: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(server.rstrip("/") for server in servers)

    @model_validator(mode="after")
    def _one_key_source(self) -> TrustedIssuer:
        if (self.jwks_url is None) == (self.jwks is None):
            raise ValueError("give exactly one of jwks_url or jwks")
        return self


def load_trusted_issuers(path: Path) -> dict[str, TrustedIssuer]:
    try:
        text = path.read_text(encoding="utf-8")
        document = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise IssuerConfigError(f"trusted issuers file {path} is not readable JSON/YAML: {error}") from error
    entries = document.get("issuers") if isinstance(document, dict) else document
    if not isinstance(entries, list) or not entries:
        raise IssuerConfigError(f"{path}: expected a list of issuers (or {{'issuers': [...]}})")
    issuers: dict[str, TrustedIssuer] = {}
    for index, entry in enumerate(entries):
        try:
            issuer = TrustedIssuer.model_validate(entry)
        except ValidationError as error:
            raise IssuerConfigError(f"{path}: issuer {index}: {error}") from error
        if issuer.iss in issuers:
            raise IssuerConfigError(f"{path}: issuer {issuer.iss} listed twice")
        issuers[issuer.iss] = issuer
    return issuers
