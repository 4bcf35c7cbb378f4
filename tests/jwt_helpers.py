"""Keys generated in the test, JWKS documents, trusted-issuer files and signed CDS Hooks JWTs."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://ehr.example.org/fhir"
PUBLIC_BASE = "https://cds.example.org"
ALLOWED_FHIR = "https://fhir.example.org/r4"


@dataclass
class SigningKey:
    kid: str
    algorithm: str
    private: Any

    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        exported = ECAlgorithm.to_jwk(public) if self.algorithm.startswith("ES") else RSAAlgorithm.to_jwk(public)
        document: dict[str, Any] = json.loads(exported)
        document.update(kid=self.kid, use="sig", alg=self.algorithm)
        return document

    def sign(self, claims: dict[str, Any], *, headers: dict[str, Any] | None = None) -> str:
        return jwt.encode(
            claims, self.private, algorithm=self.algorithm, headers={"kid": self.kid, "typ": "JWT", **(headers or {})}
        )


def es384(kid: str = "es-1") -> SigningKey:
    return SigningKey(kid, "ES384", ec.generate_private_key(ec.SECP384R1()))


def rs384(kid: str = "rs-1") -> SigningKey:
    return SigningKey(kid, "RS384", rsa.generate_private_key(public_exponent=65537, key_size=2048))


def jwks(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [key.jwk() for key in keys]}


def claims(path: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": f"{PUBLIC_BASE}{path}",
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def write_issuers(folder: Path, **issuer: Any) -> Path:
    entry: dict[str, Any] = {"iss": ISSUER, "fhir_servers": [ALLOWED_FHIR], **issuer}
    path = folder / "issuers.json"
    path.write_text(json.dumps({"issuers": [entry]}))
    return path


def auth_settings(folder: Path, *keys: SigningKey, **issuer: Any) -> dict[str, Any]:
    if "jwks_url" not in issuer:
        issuer.setdefault("jwks", jwks(*keys))
    return {
        "sandbox": False,
        "trusted_issuers_file": write_issuers(folder, **issuer),
        "public_base_url": PUBLIC_BASE,
    }
