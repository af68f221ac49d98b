"""Unknown query parameters are refused (422), never ignored.

A misspelt filter (``?projet=hsr``, ``?project=`` where the route takes ``project_id``) that is silently
dropped answers "everything", which a planner then exports as the answer. An app-wide dependency checks
a request's parameter names against those its route declares (its own query parameters and those of
every dependency), read once per route from FastAPI's dependant. The OGC API routes keep their own check
(400, as OGC API - Features asks).

A NUL character (``%00``) in a query value or a path segment is refused everywhere (422 naming the parameter):
PostgreSQL cannot store or compare text holding one, and would answer with an error instead of "no match".
"""

from __future__ import annotations

from fastapi import Request
from fastapi._compat import ModelField
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

from gis.platform.errors import InvalidInput

OWN_CHECK_PREFIXES = ("/ogc",)
_allowed: dict[int, frozenset[str]] = {}  # id(route) → names; routes live as long as the app


def _param_names(param: ModelField) -> set[str]:
    """A query parameter's name, or the names of its fields when it is a model (``Annotated[M, Query()]``)."""
    model = param.field_info.annotation
    if isinstance(model, type) and issubclass(model, BaseModel):
        return {f.alias or name for name, f in model.model_fields.items()}
    return {param.alias}


def _query_names(dependant: Dependant) -> set[str]:
    names = set().union(*(_param_names(p) for p in dependant.query_params))
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def reject_unknown_query(request: Request) -> None:
    """An app-wide dependency: 422 naming the first query parameter the route does not take."""
    _reject_nul(request)
    route = request.scope.get("route")
    if not request.scope.get("query_string") or not isinstance(route, APIRoute) \
            or route.path.startswith(OWN_CHECK_PREFIXES):
        return
    allowed = _allowed.get(id(route))
    if allowed is None:
        allowed = _allowed[id(route)] = frozenset(_query_names(route.dependant))
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        takes = ", ".join(sorted(allowed)) or "no query parameters"
        raise InvalidInput(f"unknown query parameter {unknown[0]!r}; this route takes {takes}", unknown[0])


def _reject_nul(request: Request) -> None:
    for name, value in (*request.path_params.items(), *request.query_params.multi_items()):
        if "\x00" in str(value) or "\x00" in name:
            raise InvalidInput(f"{name!r} contains a NUL (0x00) character", name.replace("\x00", "\\x00"))
