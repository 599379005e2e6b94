"""Errors of the usage path, each in one of the shared categories."""

from __future__ import annotations

from billmig.errors import PermanentError


class InvalidUsageEvent(PermanentError):
    """A usage event is not in the documented shape; the message names the source, the record and the field."""


class InvalidRouterConfig(PermanentError):
    """The router config is unusable; every problem is listed, naming the source and the key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
