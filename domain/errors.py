"""The domain's errors: one base, each refusal a subclass that says why.

The HTTP layer maps these classes to status codes in one table (infra/http/errors.py);
the domain itself knows nothing of HTTP.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every refusal the domain makes."""

    code = "domain_error"

    def __init__(self, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class NotFound(DomainError):
    """An id names no contract or ticket."""

    code = "not_found"


class InvalidInput(DomainError):
    """A command's values make no sense whatever the state (bad priority, minutes <= 0...)."""

    code = "invalid_input"


class Conflict(DomainError):
    """A command does not fit the aggregate's current state (resolving twice...)."""

    code = "conflict"


class ConcurrentChange(Conflict):
    """Another command changed the aggregate first, and retrying did not help."""

    code = "concurrent_change"
