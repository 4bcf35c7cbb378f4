"""All configuration in one typed object, read from CDS_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cds_service.data_paths import CHECKOUT_ROOT, data_dir, default_database_path

PROJECT_ROOT = CHECKOUT_ROOT  # the checkout (tests and tools); the service reads its data via data_dir()


class Settings(BaseSettings):
    """Service settings. Every field maps to an environment variable `CDS_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="CDS_", frozen=True, extra="ignore")

    sandbox: bool = Field(
        default=False,
        description="Sandbox mode: no EHR authentication; meant for loopback use with fixture data.",
    )
    hooks_dir: Path = Field(
        default_factory=lambda: data_dir("hooks"),
        description="Folder with one JSON file per CDS service (its discovery entry).",
    )
    discovery_shape: Literal["per-hook", "shared-id"] = Field(
        default="per-hook",
        description="How discovery lists a service with several hooks: one id per hook (every client reaches "
        "every hook), or the spec's one shared id (clients that replace a service's earlier cards by id).",
    )
    database_url: str = Field(
        default_factory=lambda: f"sqlite:///{default_database_path()}",
        description="SQLAlchemy URL for feedback and audit records (SQLite default, PostgreSQL by URL).",
    )
    max_body_bytes: int = Field(
        default=8 * 1024 * 1024,
        gt=0,
        description="Largest accepted request body; larger bodies get 413.",
    )
    fhir_deadline_seconds: float = Field(
        default=2.0,
        gt=0,
        description="One deadline for all FHIR fallback queries of a hook call (queries run in parallel).",
    )
    fhir_max_pages: int = Field(
        default=5, ge=1, description="How many `next` pages of one search are followed at most."
    )
    fhir_max_response_bytes: int = Field(
        default=16 * 1024 * 1024, gt=0, description="Largest FHIR response body accepted."
    )
    adult_age_years: int = Field(
        default=18,
        ge=1,
        description="Age from which a patient is an adult for the dose band (NCT02780583: 'adults').",
    )
    weight_max_age_days_child: int = Field(
        default=7, ge=1, description="A body weight older than this is stale for a patient under adult age."
    )
    weight_max_age_days_adult: int = Field(
        default=30, ge=1, description="A body weight older than this is stale for an adult."
    )
    lab_lookback_hours: int = Field(
        default=72, ge=1, description="Lab results older than this are not used for criteria."
    )
    safety_lab_lookback_days: int = Field(
        default=7,
        ge=1,
        description="Creatinine and ANC older than this are not used for the dose safety checks.",
    )
    temperature_lookback_hours: int = Field(default=24, ge=1, description="Window for the maximum body temperature.")
    dose_rounding: Literal["down-1mg", "down-5mg", "down-10mg"] = Field(
        default="down-1mg",
        description="How suggested per-dose amounts are rounded; every policy rounds down, never up.",
    )
    height_max_age_days: int = Field(
        default=90, ge=1, description="A body height older than this is not used (bedside Schwartz)."
    )
    underdose_tolerance_percent: int = Field(
        default=20,
        ge=0,
        le=100,
        description="A drafted daily dose this much below the protocol dose draws a warning.",
    )
    timezone: str = Field(
        default="UTC",
        description="IANA time zone in which cards and the app show times (e.g. America/Chicago).",
    )
    host: str = Field(
        default="127.0.0.1",
        description="Address the server binds to (`make run` and `cds-service serve` pass it); sandbox mode "
        "requires a loopback address.",
    )
    trusted_issuers_file: Path | None = Field(
        default=None,
        description="JSON or YAML file of trusted EHR issuers (iss, jwks_url or jwks, algorithms, audience, "
        "tenant, fhir_servers). When set, every hook and feedback call needs a valid bearer JWT.",
    )
    public_base_url: str | None = Field(
        default=None,
        description="External base URL of this service (e.g. https://cds.example.org); the JWT `aud` must be "
        "`<this>/cds-services/<id>` (or `/feedback`) unless the issuer overrides it. Required with issuers.",
    )
    redis_url: str | None = Field(
        default=None, description="Redis URL for the shared JWT `jti` replay store (several instances)."
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Browser origins allowed by CORS (explicit list; never '*')."
    )
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300, description="Clock skew allowed for exp/iat/nbf.")
    jwt_max_lifetime_seconds: int = Field(
        default=3600, ge=60, description="Tokens whose exp - iat exceeds this are refused."
    )
    jwks_cache_seconds: int = Field(default=300, ge=10, description="How long a fetched JWKS is trusted.")
    jwks_refresh_cooldown_seconds: int = Field(
        default=30, ge=1, description="At most one JWKS refetch per issuer in this time on an unknown `kid`."
    )
    benchmark_endpoints: bool = Field(
        default=False,
        description="Sandbox only: add POST /bench/decode-only/{id}, which decodes a hook request exactly as a "
        "call does and answers no cards (the benchmark's baseline).",
    )
    gc_gen0_threshold: int = Field(
        default=20000,
        ge=700,
        description="Young-generation GC threshold (CPython default 700): fewer collections while a large "
        "prefetch is decoded (README, performance).",
    )
    gc_freeze: bool = Field(
        default=True, description="gc.freeze() after start-up, removing full-GC pauses from p99 latency."
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown IANA time zone {value!r}") from error
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def load_settings() -> Settings:
    return Settings()
