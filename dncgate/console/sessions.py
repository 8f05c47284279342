"""Signed-in sessions of the console, in the serving process's memory (a restart signs everyone out).

A session is a random 256-bit token in an HttpOnly, SameSite=Strict cookie; its CSRF token is a
second random value every form carries. At most ``max_sessions`` live at once (the oldest ends
first); one unused for ``idle`` ends.
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass
class Session:
    token: str
    operator: str
    csrf: str
    seen: datetime


class SessionBook:
    def __init__(self, *, idle: timedelta, max_sessions: int) -> None:
        self.idle, self.max_sessions = idle, max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def open(self, operator: str, now: datetime) -> Session:
        session = Session(secrets.token_urlsafe(32), operator, secrets.token_urlsafe(32), now)
        self._sessions[session.token] = session
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return session

    def get(self, token: str, now: datetime) -> Session | None:
        session = self._sessions.get(token)
        if session is None:
            return None
        if now - session.seen > self.idle:
            del self._sessions[token]
            return None
        session.seen = now
        self._sessions.move_to_end(token)
        return session

    def close(self, token: str) -> None:
        self._sessions.pop(token, None)

    def close_all(self, operator: str) -> None:
        for token in [t for t, s in self._sessions.items() if s.operator == operator]:
            del self._sessions[token]

    def __len__(self) -> int:
        return len(self._sessions)


def same_token(given: str, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())
