"""The README's integration guide, row by row where no other test already shows it: what Epic, Oracle
Health (Cerner), the official CDS Hooks sandbox and HealthChain need, per ../shared/reference/cds-hooks.md
(§2.1 sandbox, §3.1 Epic, §3.2 Cerner) and the captures of real clients."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import respx
from fastapi.testclient import TestClient

from cds_service.registry import load_registry
from cds_service.sandbox.fixtures import build_request, load_cases, load_order, load_patients
from cds_service.settings import PROJECT_ROOT
from tests.builders import hook_request, patient
from tests.conftest import CORE_HOOKS, FIXED_NOW
from tests.jwt_helpers import ISSUER, PUBLIC_BASE, es384, jwks, rs384

PATH = "/cds-services/prefetch-probe"
BODY = hook_request(prefetch={"patient": patient(), "labs": None, "encounter": None})
README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
# Epic's JWKS address pattern (cds-hooks.md §3.1: `{Base}/api/epic/2019/Security/Open/PublicKeys/530013/530013`).
EPIC_JWKS = "https://fhir.hospital.example/api/epic/2019/Security/Open/PublicKeys/530013/530013"
EPIC_AUDIENCE = "https://cds.example.org/cds-services"


def _issuers(folder: Path, **entry: Any) -> Path:
    path = folder / "issuers.yaml"
    lines = ["issuers:", f"  - iss: {entry.pop('iss', ISSUER)}"]
    lines += [f"    {key}: {value}" for key, value in entry.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _production(make_client: Callable[..., TestClient], issuers: Path) -> TestClient:
    return make_client(hooks_dir=CORE_HOOKS, sandbox=False, trusted_issuers_file=issuers, public_base_url=PUBLIC_BASE)


def test_epic_token_rs384_with_sub_nbf_a_15_minute_life_and_a_hand_set_aud(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    """Epic: RS384 by default, `aud` configured by hand, `sub` (client id), `nbf` ≈ iat − 5 min, exp − iat =
    900 s in its example; keys at its jku address, allowlisted per organisation as the issuer's jwks_url."""
    key = rs384("epic-1")
    issuers = _issuers(tmp_path, jwks_url=EPIC_JWKS, algorithms="[RS384]", audience=EPIC_AUDIENCE)
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "epic-client-id",
        "aud": EPIC_AUDIENCE,
        "iat": now,
        "nbf": now - 300,
        "exp": now + 900,
        "jti": str(uuid.uuid4()),
    }
    with respx.mock(assert_all_called=False) as mock:
        keys = mock.get(EPIC_JWKS).respond(json=jwks(key))
        client = _production(make_client, issuers)
        token = key.sign(claims, headers={"jku": EPIC_JWKS})
        assert client.post(PATH, json=BODY, headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert keys.called
        es_key = es384("epic-1")
        keys.respond(json=jwks(es_key))
        es_token = es_key.sign({**claims, "jti": str(uuid.uuid4())})
        refused = client.post(PATH, json=BODY, headers={"Authorization": f"Bearer {es_token}"})
        assert refused.status_code == 401  # ES384 is not among this issuer's algorithms


def test_a_tokens_own_jku_is_never_followed(make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    """Cerner names its JKUs, and the public sandbox's private key is published: keys come only from the
    issuer's configured jwks_url or jwks, never from the address a token names."""
    trusted, forged = es384("k1"), es384("k1")
    issuers = _issuers(tmp_path, jwks_url="https://ehr.example.org/jwks.json")
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": f"{PUBLIC_BASE}{PATH}", "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    with respx.mock(assert_all_called=False) as mock:
        mock.get("https://ehr.example.org/jwks.json").respond(json=jwks(trusted))
        attacker = mock.get("https://attacker.example/jwks.json").respond(json=jwks(forged))
        client = _production(make_client, issuers)
        token = forged.sign(claims, headers={"jku": "https://attacker.example/jwks.json"})
        response = client.post(PATH, json=BODY, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert not attacker.called


def _every_case_card(make_client: Callable[..., TestClient]) -> list[tuple[str, list[dict[str, Any]]]]:
    client = make_client()
    registry = load_registry(PROJECT_ROOT / "hooks")
    patients = load_patients()
    answered = []
    for case in load_cases():
        service = registry.get(case.service)
        assert service is not None
        order = load_order(case.order) if case.order else None
        for _ in range(2):  # two calls, two hookInstances: the topic codes must not change
            body = build_request(patients[case.patient], service, hook=case.hook, now=FIXED_NOW, order=order)
            response = client.post(f"/cds-services/{registry.endpoint_id(case.service, case.hook)}", json=body)
            assert response.status_code == 200, response.text
            answered.append((case.name, response.json()["cards"]))
    return answered


@pytest.fixture(scope="module")
def every_case_card(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, list[dict[str, Any]]]]:
    from cds_service.app import create_app
    from tests.conftest import contract_client, make_settings

    database = tmp_path_factory.mktemp("guide") / "cds.sqlite3"
    with contract_client(create_app(make_settings(f"sqlite:///{database}"), clock=lambda: FIXED_NOW)) as client:
        return _every_case_card(lambda **_: client)


def test_epic_cards_selection_any_one_action_per_suggestion_static_topic_codes(
    every_case_card: list[tuple[str, list[dict[str, Any]]]],
) -> None:
    """Epic: selectionBehavior "any" only, a single action per suggestion, source.topic.code static per card
    topic and at most 100 characters (overrides are tied to it)."""
    topics: dict[str, list[list[str]]] = {}
    suggestions = 0
    for name, cards in every_case_card:
        topics.setdefault(name, []).append(sorted(card["source"]["topic"]["code"] for card in cards))
        for card in cards:
            code = card["source"]["topic"]["code"]
            assert len(code) <= 100 and re.fullmatch(r"[A-Za-z0-9-]+", code), code
            if card.get("suggestions"):
                assert card["selectionBehavior"] == "any"
                for suggestion in card["suggestions"]:
                    assert len(suggestion["actions"]) == 1
                    suggestions += 1
    assert suggestions > 0  # the check saw suggestions
    assert all(first == second for first, second in topics.values())


def test_cerner_links_are_absolute_without_app_context_and_their_hosts_are_listed(
    every_case_card: list[tuple[str, list[dict[str, Any]]]],
) -> None:
    """Cerner removes any link not registered with the service and does not support appContext: no link carries
    appContext; absolute links are https and every host a card links to is listed in the README's guide; the one
    SMART link is the app's own launch URL (registered with Cerner as the service's SMART app)."""
    hosts = set()
    smart = 0
    for _, cards in every_case_card:
        for card in cards:
            for link in card.get("links", []):
                assert "appContext" not in link
                if link["type"] == "smart":
                    assert urlsplit(link["url"]).path == "/app/launch"
                    smart += 1
                    continue
                assert link["type"] == "absolute" and link["url"].startswith("https://")
                hosts.add(urlsplit(link["url"]).netloc)
    assert smart > 0  # every MAS card links to the work-up app
    assert hosts
    guide = README[README.index("## Integration guide") :]
    assert all(f"`{host}`" in guide for host in hosts), sorted(hosts)


def test_every_test_the_guide_cites_exists() -> None:
    """The guide stays tested: each `file::test` (or `file`) it names is a real test file and function, and
    each parametrised replay it names is a capture that exists."""
    guide = README[README.index("## Integration guide") : README.index("## Sandbox: try it")]
    cited = re.findall(r"`(test_[a-z0-9_]+\.py)(?:::([a-z0-9_]+)(?:\[([^\]]+)\])?)?`", guide)
    assert len(cited) >= 20
    for file, function, parameter in cited:
        source = (Path(__file__).parent / file).read_text(encoding="utf-8")
        if function:
            assert re.search(rf"^def {function}\(", source, re.M), f"{file}::{function}"
        if parameter:
            assert (Path(__file__).parent / "captures" / parameter).is_file(), parameter
