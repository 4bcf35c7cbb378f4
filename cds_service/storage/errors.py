"""The one failure every store (database, Redis) reports when it cannot take or give data right now."""

from __future__ import annotations


class StoreUnavailableError(Exception):
    """The store is down, gone or unwritable. The message names the store and the failure type only (never data);
    the transport answers 503 with Retry-After and /readyz says not ready."""
