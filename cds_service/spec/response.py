"""CDS Hooks 2.0 response types: strict, so nothing we emit can break the spec.

Each class names its section of the spec (cds-hooks-spec-2.0.1.md). Rules that go beyond the
spec's SHOULDs, chosen for EHR interoperability, are marked "policy".
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Spec §Card attributes: "summary ... <140-character".
SUMMARY_MAX_CHARS = 139
# Epic: source.topic.code must be alphanumeric, at most 100 characters, static per card topic.
TOPIC_CODE_MAX_CHARS = 100

Indicator = Literal["info", "warning", "critical"]
SelectionBehavior = Literal["at-most-one", "any"]
ActionType = Literal["create", "update", "delete"]
LinkType = Literal["absolute", "smart"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_min_length=1)


class Coding(_Strict):
    """Spec §Coding: `display` is required wherever a Coding is an override reason (cds-resp-4)."""

    code: str
    system: str
    display: str | None = None


class Source(_Strict):
    """Spec §Source."""

    label: str
    url: str | None = None
    icon: str | None = None
    topic: Coding | None = None

    @field_validator("topic")
    @classmethod
    def _topic_code_is_stable_token(cls, topic: Coding | None) -> Coding | None:
        # Policy (Epic): alphanumeric (we also allow '-'), at most 100 characters.
        if topic is not None:
            code = topic.code
            if len(code) > TOPIC_CODE_MAX_CHARS or not code.replace("-", "").isalnum():
                raise ValueError("source.topic.code must be alphanumeric (or '-') and at most 100 chars")
        return topic


class Action(_Strict):
    """Spec §Action. create/update carry the full resource; delete carries resourceId."""

    type: ActionType
    description: str
    resource: dict[str, Any] | None = None
    resourceId: str | None = None  # noqa: N815 (spec field name)

    @model_validator(mode="after")
    def _resource_matches_type(self) -> Action:
        if self.type in ("create", "update") and not self.resource:
            raise ValueError(f"a {self.type} action must carry a resource")
        if self.type == "delete" and not self.resourceId:
            raise ValueError("a delete action must carry resourceId (cds-resp-2)")
        return self


class Suggestion(_Strict):
    """Spec §Suggestion. Policy: uuid always set (feedback needs it); one action (Epic)."""

    label: str
    uuid: str
    isRecommended: bool | None = None  # noqa: N815
    actions: list[Action] = Field(min_length=1, max_length=1)


class Link(_Strict):
    """Spec §Link."""

    label: str
    url: str
    type: LinkType
    appContext: str | None = None  # noqa: N815

    @model_validator(mode="after")
    def _app_context_only_for_smart(self) -> Link:
        if self.appContext is not None and self.type != "smart":
            raise ValueError("appContext is only allowed on smart links (cds-resp-3)")
        return self


class Card(_Strict):
    """Spec §Card. Policy: uuid always set so the EHR can send feedback."""

    uuid: str
    summary: str = Field(max_length=SUMMARY_MAX_CHARS)
    detail: str | None = None
    indicator: Indicator
    source: Source
    suggestions: list[Suggestion] | None = Field(default=None, min_length=1)
    selectionBehavior: SelectionBehavior | None = None  # noqa: N815
    overrideReasons: list[Coding] | None = Field(default=None, min_length=1)  # noqa: N815
    links: list[Link] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _spec_invariants(self) -> Card:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("selectionBehavior is required when suggestions exist (cds-resp-6)")
        if self.selectionBehavior is not None and not self.suggestions:
            raise ValueError("selectionBehavior without suggestions")
        if self.selectionBehavior == "at-most-one" and self.suggestions:
            recommended = [s for s in self.suggestions if s.isRecommended]
            if len(recommended) > 1:
                raise ValueError("at-most-one allows at most one recommended suggestion (cds-resp-1)")
        if self.overrideReasons and any(not reason.display for reason in self.overrideReasons):
            raise ValueError("override reasons need a display (cds-resp-4)")
        return self


class CdsResponse(_Strict):
    """Spec §CDS Service Response. `{"cards": []}` is the one allowed empty value."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    cards: list[Card]

    def to_json(self) -> bytes:
        # exclude_none: the spec forbids nulls; optional lists default to None, never [].
        return self.model_dump_json(exclude_none=True).encode()


class DiscoveryService(_Strict):
    """Spec §Discovery response entry (plus 3.0's RECOMMENDED `version`)."""

    hook: str
    title: str | None = None
    description: str
    id: str
    prefetch: dict[str, str] | None = None
    usageRequirements: str | None = None  # noqa: N815
    version: str | None = None
    extension: dict[str, Any] | None = None  # spec §Extensions: this service's rule pack (id, version, sha256)


class DiscoveryResponse(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True)
    services: list[DiscoveryService]

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()
