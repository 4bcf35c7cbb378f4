"""All configuration in one typed object, read from CDS_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
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
    max_header_bytes: int = Field(
        default=32 * 1024,
        ge=1024,
        description="Largest request line plus headers (431 beyond). Enforced by the server protocol "
        "cds_service.transport.http_limits:BoundedHttpToolsProtocol, which reads this variable itself.",
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
    rule_pack_dir: Path | None = Field(
        default=None,
        description="Folder of the rule pack in force (default: the pack shipped in cds_service/rulepack/pack).",
    )
    rule_pack_overrides: Path | None = Field(
        default=None,
        description="A site's YAML file of rule-pack parameter overrides, each within the pack's stated bounds.",
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
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token Prometheus must send to read /metrics outside sandbox mode; without it "
        "/metrics is not served there (404). Sandbox mode serves /metrics to its loopback clients.",
    )
    feedback_max_items: int = Field(
        default=500, ge=1, description="Most feedback items accepted in one feedback call (more: 413)."
    )
    fhir_max_call_bytes: int = Field(
        default=8 * 1024 * 1024,
        gt=0,
        description="Byte budget of one hook call's FHIR fallback reads, all keys and pages together, counted "
        "after decompression; what exceeds it is not read (that data is unavailable).",
    )
    storage_retry_after_seconds: int = Field(
        default=5, ge=1, description="Retry-After of the 503 answered while the database or Redis is unavailable."
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
    app_client_id: str | None = Field(
        default=None,
        description="OAuth client id of the SMART app 'MAS work-up' (/app) as registered with the EHR; setting it "
        "mounts the app outside sandbox mode. The sandbox registers 'mas-workup-sandbox' when unset.",
    )
    app_client_secret: SecretStr | None = Field(
        default=None,
        description="The app's client secret (confidential client, client_secret_basic). Never sent to the "
        "browser. The sandbox makes a random one per process when unset.",
    )
    app_redirect_uri: str | None = Field(
        default=None,
        description="The app's registered redirect URI; default <CDS_PUBLIC_BASE_URL>/app/callback (sandbox: "
        "the request's own base URL).",
    )
    app_issuers: list[str] = Field(
        default_factory=list,
        description="FHIR base URLs (the launch `iss`) the app may launch against, as a JSON list; any other iss "
        "is refused before anything is sent to it. The sandbox FHIR server is always allowed in sandbox mode.",
    )
    app_session_seconds: int = Field(
        default=3600, ge=60, le=86400, description="How long an app session (its access token) is kept at most."
    )
    app_launch_seconds: int = Field(
        default=600, ge=30, le=3600, description="How long a started launch may take to come back with a code."
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
