"""Errors the library raises on purpose; the API and the CLI map each to a status or exit code."""

from __future__ import annotations


class GisError(Exception):
    """Base of the library's own errors: the message is safe to show to a user."""

    status_code = 400


class ClusterError(GisError):
    status_code = 503


class DatabaseUnavailable(GisError):
    status_code = 503


class NotFound(GisError):
    status_code = 404


class InvalidInput(GisError):
    """Bad input from a caller; ``where`` points at the offending field or row."""

    status_code = 422

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.where = where


class PayloadTooLarge(GisError):
    status_code = 413
