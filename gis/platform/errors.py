"""Errors the library raises on purpose; the API and the CLI map each to a status or exit code."""

from __future__ import annotations


class GisError(Exception):
    """Base of the library's own errors: the message is safe to show to a user; ``where`` points at the
    offending field, parameter or row when there is one."""

    status_code = 400

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.where = where


class ClusterError(GisError):
    status_code = 503


class DatabaseUnavailable(GisError):
    status_code = 503


class ServiceBusy(GisError):
    """Overload: no connection or slot came free in time, or a statement ran past its time limit. The request
    may be repeated later (the API answers 503 with Retry-After)."""

    status_code = 503


class NotFound(GisError):
    status_code = 404


class ProjectNotFound(NotFound):
    """No (active) project by that id or code: the one wording of it."""

    def __init__(self, ref: int | str) -> None:
        super().__init__(f"no project {ref!r}" if isinstance(ref, str) else f"no project with id {ref}", "project")


class InvalidInput(GisError):
    """Bad input from a caller."""

    status_code = 422


class InvalidGeometry(InvalidInput):
    """A geometry that is not valid (a polygon crossing itself, a ring not closed); ``point`` is where, as
    (x, y) in the CRS the caller sent, when GEOS names a place."""

    def __init__(self, message: str, where: str | None = None, point: tuple[float, float] | None = None) -> None:
        super().__init__(message, where)
        self.point = point


class Conflict(GisError):
    """The request clashes with what is stored: a code already taken, a record still in use."""

    status_code = 409


class PayloadTooLarge(GisError):
    status_code = 413


class Unauthenticated(GisError):
    """No valid token or session."""

    status_code = 401


class Forbidden(GisError):
    """The caller's role or district does not allow this."""

    status_code = 403


class VersionConflict(GisError):
    """An edit based on a version that is no longer current (optimistic concurrency)."""

    status_code = 412


class VersionRequired(GisError):
    """An edit that does not say which version it was based on."""

    status_code = 428
