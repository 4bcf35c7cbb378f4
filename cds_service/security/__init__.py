"""EHR authentication (CDS Hooks 2.0 §Trusting CDS Clients): trusted issuers, JWKS, JWT checks, jti replay."""
