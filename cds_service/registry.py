"""Services from `hooks/*.json`: each file is one service's discovery entry plus a private `_config`.

The loader refuses to start on a bad file (unknown token, missing field, unresolvable handler), so a
broken deployment fails at boot, not at the first patient. Discovery is these files, minus `_config`,
with one entry per hook.

Endpoints (`POST /cds-services/{id}`): a service with one hook answers at its own id. A service with
several hooks answers at `{id}-{hook}` (that hook only) *and* at `{id}` (all its hooks). Discovery lists
one shape (`DiscoveryShape`):

- "per-hook" (default): one id per hook (`anakinra-dose-order-select`, `anakinra-dose-order-sign`). Every
  client reaches every hook; the official sandbox keys services by `{discoveryUrl}/{id}`, so the spec's
  shared id made its order-sign entry overwrite the order-select one.
- "shared-id": the spec's shape (2.0 §Discovery, §Update stale guidance): one id listed for each hook, so a
  client that replaces a service's earlier cards when the next hook fires (order-select -> order-sign)
  does so.

Both shapes' URLs are always served, so switching the shape never breaks a client configured by URL.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from cds_service.call import HookCall
from cds_service.fhir.prefetch import PrefetchSpec, ServiceData
from cds_service.fhir.templates import is_allowed_token, template_tokens
from cds_service.rulepack import RulePack, default_pack
from cds_service.spec.response import Card, DiscoveryService
from cds_service.startup import StartupError

SPEC_VERSION = "2.0.1"
KNOWN_HOOKS = frozenset({"patient-view", "order-select", "order-sign"})
# `{{pack.loinc:ferritin,platelets}}` in a hooks file: the rule pack's LOINC codes of those analytes, expanded at
# load, so prefetch queries always ask for exactly the codes the rules read (they cannot drift).
PACK_CODES = re.compile(r"\{\{pack\.loinc:([a-z_,]+)\}\}")
RULE_PACK_EXTENSION = "mas-cds-rule-pack"
DiscoveryShape = Literal["per-hook", "shared-id"]


@dataclass(frozen=True)
class HandlerResult:
    cards: Sequence[Card]
    rule_versions: Mapping[str, str]  # recorded in the audit with every call


Handler = Callable[[HookCall, ServiceData], Awaitable[HandlerResult]]
Guard = Callable[[HookCall], Awaitable[bool]]


class ServiceConfigError(StartupError):
    pass


@dataclass(frozen=True)
class ServiceDefinition:
    id: str
    hooks: tuple[str, ...]
    title: str
    description: str
    prefetch: tuple[PrefetchSpec, ...]
    handler: Handler
    source_file: Path
    guard: Guard | None = None
    rule_pack: Mapping[str, str] | None = None  # id, version, sha256 of the pack in force (discovery extension)

    def endpoint_id(self, hook: str, shape: DiscoveryShape = "per-hook") -> str:
        """The id under which discovery lists this service for `hook`."""
        if len(self.hooks) == 1 or shape == "shared-id":
            return self.id
        return f"{self.id}-{hook}"

    def endpoints(self) -> list[Endpoint]:
        """Every URL id this service answers at, whatever the discovery shape."""
        whole = Endpoint(self.id, self, self.hooks)
        if len(self.hooks) == 1:
            return [whole]
        return [whole, *(Endpoint(self.endpoint_id(hook), self, (hook,)) for hook in self.hooks)]

    def discovery_entries(self, shape: DiscoveryShape = "per-hook") -> list[DiscoveryService]:
        prefetch = {spec.key: spec.template for spec in self.prefetch} or None
        extension = {RULE_PACK_EXTENSION: dict(self.rule_pack)} if self.rule_pack else None
        return [
            DiscoveryService(
                hook=hook,
                id=self.endpoint_id(hook, shape),
                title=self.title,
                description=self.description,
                prefetch=prefetch,
                version=SPEC_VERSION,
                extension=extension,
            )
            for hook in self.hooks
        ]


@dataclass(frozen=True)
class Endpoint:
    """One `/cds-services/{id}` URL: the service behind it and the hooks it answers there."""

    id: str
    service: ServiceDefinition
    hooks: tuple[str, ...]


@dataclass(frozen=True)
class Registry:
    services: Mapping[str, ServiceDefinition]
    shape: DiscoveryShape = "per-hook"

    def get(self, service_id: str) -> ServiceDefinition | None:
        return self.services.get(service_id)

    @cached_property
    def endpoints(self) -> Mapping[str, Endpoint]:
        return {endpoint.id: endpoint for service in self.services.values() for endpoint in service.endpoints()}

    def endpoint(self, endpoint_id: str) -> Endpoint | None:
        return self.endpoints.get(endpoint_id)

    def endpoint_id(self, service_id: str, hook: str) -> str:
        """The id a client that read discovery calls for `hook` of this service."""
        return self.services[service_id].endpoint_id(hook, self.shape)

    def discovery(self) -> list[DiscoveryService]:
        return [entry for service in self.services.values() for entry in service.discovery_entries(self.shape)]


def load_registry(hooks_dir: Path, shape: DiscoveryShape = "per-hook", *, pack: RulePack | None = None) -> Registry:
    if not hooks_dir.is_dir():
        raise ServiceConfigError(f"hooks folder not found: {hooks_dir}")
    pack = pack or default_pack()
    services: dict[str, ServiceDefinition] = {}
    endpoint_files: dict[str, str] = {}
    for path in sorted(hooks_dir.glob("*.json")):
        service = _load_service(path, pack)
        if service.id in services:
            raise ServiceConfigError(f"{path.name}: service id '{service.id}' is defined twice")
        for endpoint in service.endpoints():
            if endpoint.id in endpoint_files:
                raise ServiceConfigError(
                    f"{path.name}: endpoint id '{endpoint.id}' is also served by {endpoint_files[endpoint.id]}"
                )
            endpoint_files[endpoint.id] = path.name
        services[service.id] = service
    return Registry(services, shape)


def _load_service(path: Path, pack: RulePack) -> ServiceDefinition:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ServiceConfigError(f"{path.name}: not readable JSON ({error})") from error
    if not isinstance(document, dict):
        raise ServiceConfigError(f"{path.name}: must hold a JSON object")
    name = path.name
    service_id = _required_str(document, "id", name)
    if path.stem != service_id:
        raise ServiceConfigError(f"{name}: file name must be the service id '{service_id}.json'")
    hooks = document.get("hooks")
    if not isinstance(hooks, list) or not hooks or not all(h in KNOWN_HOOKS for h in hooks):
        raise ServiceConfigError(f"{name}: 'hooks' must list hooks from {sorted(KNOWN_HOOKS)}")
    config = document.get("_config")
    if not isinstance(config, dict):
        raise ServiceConfigError(f"{name}: '_config' object missing")
    required = config.get("required", [])
    prefetch = _prefetch_specs(_expand_pack_codes(document.get("prefetch", {}), pack, name), required, name)
    return ServiceDefinition(
        id=service_id,
        hooks=tuple(hooks),
        title=_required_str(document, "title", name),
        description=_required_str(document, "description", name),
        prefetch=prefetch,
        handler=_import_handler(config.get("handler"), name),
        source_file=path,
        guard=_import_handler(config["guard"], name) if "guard" in config else None,
        rule_pack=pack.identity(),
    )


def _expand_pack_codes(prefetch: Any, pack: RulePack, name: str) -> Any:
    if not isinstance(prefetch, dict):
        return prefetch
    known = {key.value: key for key in pack.catalogue.analytes}

    def expand(match: re.Match[str]) -> str:
        names = match.group(1).split(",")
        unknown = [analyte for analyte in names if analyte not in known]
        if unknown:
            raise ServiceConfigError(f"{name}: prefetch names analytes the rule pack does not know: {unknown}")
        return pack.catalogue.loinc_query(known[analyte] for analyte in names)

    return {key: PACK_CODES.sub(expand, value) if isinstance(value, str) else value for key, value in prefetch.items()}


def _prefetch_specs(prefetch: Any, required: Any, name: str) -> tuple[PrefetchSpec, ...]:
    if not isinstance(prefetch, dict) or not all(isinstance(v, str) for v in prefetch.values()):
        raise ServiceConfigError(f"{name}: 'prefetch' must map keys to query templates")
    for key, template in prefetch.items():
        tokens = template_tokens(template)
        # Every "{{" must open a token we can fill: 3.0's {{today()}} and FHIRPath are refused.
        if template.count("{{") != len(tokens) or not all(is_allowed_token(t) for t in tokens):
            raise ServiceConfigError(f"{name}: prefetch '{key}' uses tokens STU2 does not define")
        if template.startswith(("http:", "https:", "/")):
            raise ServiceConfigError(f"{name}: prefetch '{key}' must be relative to the FHIR base")
    if not isinstance(required, list) or not set(required) <= set(prefetch):
        raise ServiceConfigError(f"{name}: '_config.required' must list declared prefetch keys")
    return tuple(PrefetchSpec(key, template, key in required) for key, template in prefetch.items())


def _import_handler(reference: Any, name: str) -> Any:
    if not isinstance(reference, str) or ":" not in reference:
        raise ServiceConfigError(f"{name}: '_config.handler' must be 'module:function'")
    module_name, _, attribute = reference.partition(":")
    try:
        handler = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ServiceConfigError(f"{name}: handler '{reference}' not importable ({error})") from error
    if not callable(handler):
        raise ServiceConfigError(f"{name}: handler '{reference}' is not callable")
    return handler


def _required_str(document: Mapping[str, Any], field: str, name: str) -> str:
    value = document.get(field)
    if not isinstance(value, str) or not value.strip():
        raise ServiceConfigError(f"{name}: '{field}' must be a non-empty string")
    return value
