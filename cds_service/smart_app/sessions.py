"""Server-side state of the app: launches waiting for their code (keyed by `state`) and authorized sessions
(keyed by a random handle). Tokens stay here; the browser holds only cookies with random secrets.

Each session has its own cookie, named after its handle, so two tabs launched for two patients never
show each other's patient. State is per process: run the app with one worker, or with sticky sessions.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class PendingLaunch:
    iss: str
    token_endpoint: str
    verifier: str
    redirect_uri: str
    browser_secret: str  # also in the launch cookie: the code must come back to the browser that started it
    created: datetime


@dataclass(frozen=True)
class AppSession:
    iss: str
    access_token: str
    patient: str
    scopes: tuple[str, ...]
    need_patient_banner: bool
    browser_secret: str
    expires: datetime


@dataclass
class SessionStore:
    launch_lifetime: timedelta
    session_lifetime: timedelta
    launches: dict[str, PendingLaunch] = field(default_factory=dict)
    sessions: dict[str, AppSession] = field(default_factory=dict)

    def add_launch(self, launch: PendingLaunch) -> str:
        self._forget_old(launch.created)
        state = secrets.token_urlsafe(32)
        self.launches[state] = launch
        return state

    def take_launch(self, state: str, browser_secret: str | None, now: datetime) -> PendingLaunch | None:
        """The launch for `state`, once: unknown, expired, or from another browser gives None."""
        launch = self.launches.pop(state, None)
        if launch is None or now - launch.created > self.launch_lifetime:
            return None
        if browser_secret is None or not hmac.compare_digest(browser_secret, launch.browser_secret):
            return None
        return launch

    def add_session(self, session: AppSession) -> str:
        handle = secrets.token_urlsafe(12)
        self.sessions[handle] = session
        return handle

    def session(self, handle: str, browser_secret: str | None, now: datetime) -> AppSession | None:
        found = self.sessions.get(handle)
        if found is None or browser_secret is None or not hmac.compare_digest(browser_secret, found.browser_secret):
            return None
        if now >= found.expires:
            del self.sessions[handle]
            return None
        return found

    def _forget_old(self, now: datetime) -> None:
        for state in [k for k, v in self.launches.items() if now - v.created > self.launch_lifetime]:
            del self.launches[state]
        for handle in [k for k, v in self.sessions.items() if now >= v.expires]:
            del self.sessions[handle]
