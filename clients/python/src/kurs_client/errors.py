"""Typed errors of the SDK: every failure a caller can act on has its own class."""

from __future__ import annotations


class KursError(Exception):
    """Base class of every error raised by kurs_client."""


class InvalidArgumentError(KursError):
    """The request itself is wrong (a malformed code, date or amount): retrying cannot help."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotFoundError(KursError):
    """The data asked for does not exist (a date before the first observation, ...)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class UnsupportedCurrencyError(InvalidArgumentError):
    """A currency no source serves, not even through USD triangulation."""


class UnavailableError(KursError):
    """No endpoint (and no fallback, and no cached value) could answer in time.

    `attempts` names what was tried, in order, with the reason each failed.
    """

    def __init__(self, message: str, attempts: tuple[str, ...] = ()) -> None:
        detail = f"{message} ({'; '.join(attempts)})" if attempts else message
        super().__init__(detail)
        self.attempts = attempts


class NotSupportedError(KursError):
    """The operation is not offered by the configured transport (e.g. ListPublishers over REST)."""
