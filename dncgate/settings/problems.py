"""The collector that gathers every problem of one configuration before raising one ``ConfigError``."""

from __future__ import annotations

from collections.abc import Mapping

from dncgate.errors import ConfigError

Key = tuple[str, ...]  # a key path: ("tenants", "acme", "mode")


class Problems:
    """Every problem found so far, each with where its value came from."""

    def __init__(self, source: str, from_env: Mapping[Key, str]) -> None:
        self.source = source  # the file's path, or "defaults"
        self.from_env = from_env  # key path -> the variable that set it
        self.lines: list[str] = []

    def add(self, key: Key, message: str) -> None:
        self.lines.append(f"{self.origin(key)}: {'.'.join(key)}: {message}")

    def origin(self, key: Key) -> str:
        for length in range(len(key), 0, -1):
            variable = self.from_env.get(key[:length])
            if variable is not None:
                return f"environment {variable}" + (f" (over {self.source})" if self.source != "defaults" else "")
        return self.source

    def raise_any(self) -> None:
        if self.lines:
            raise ConfigError(self.lines)
