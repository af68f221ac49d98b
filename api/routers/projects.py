"""Projects with their progress, and the parcels still blocking each one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import date
from functools import partial
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal, TypeVar

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import Connection, Engine
from starlette.datastructures import UploadFile as StarletteUpload

from api.auth import Principal, Role, require
from api.deps import (
    NO_NUL,
    AnyProjectId,
    AreaM2,
    AsOf,
    Database,
    Day,
    IntId,
    Offset,
    ProjectId,
    Text,
    corridor_width,
    get_database,
    get_settings,
    get_today,
    get_tolerance,
    limited,
)
from api.export import ListFormat, export_response
from api.uploads import saved_upload
from api.versioned import versioned_response
from gis.analysis.alignments import (
    list_revisions,
    preview_project,
    preview_revision,
    revise_alignment,
    revision_diff,
)
from gis.analysis.blockers import (
    BLOCKER_EXPORT_COLUMNS,
    MAX_LIMIT,
    BlockerFilter,
    blocker_download,
    blockers_json,
    blockers_key,
    find_blockers,
)
from gis.domain.geometry import QueryGeometry, city_extent, parse_geometry
from gis.domain.tolerance import Tolerance
from gis.platform.config import Settings
from gis.platform.errors import InvalidInput
from gis.records.projects import (
    ProjectFields,
    add_project,
    alignment_from_file,
    archive_project,
    get_project,
    list_projects,
    update_project,
)

router = APIRouter(prefix="/projects", tags=["projects"], dependencies=[Depends(require(Role.viewer))])

Db = Annotated[Database, Depends(get_database)]
Tol = Annotated[Tolerance, Depends(get_tolerance)]
Today = Annotated[date, Depends(get_today)]


@router.get("")
async def projects(db: Db, tolerance: Tol, today: Today,
                   geometry: Annotated[bool, Query(description="Include footprints (GeoJSON, WGS 84).")] = False
                   ) -> dict:
    """Every project with parcels in its footprint, cleared, still blocking, and days to the deadline."""
    return {"tolerance": tolerance.as_dict(), "date": today.isoformat(),
            "projects": await db.run(list_projects, tolerance, today, with_geometry=geometry)}


@router.get("/{project_id}")
async def project(project_id: ProjectId, db: Db, tolerance: Tol, today: Today) -> dict:
    """One project with its footprint (GeoJSON, WGS 84) and progress."""
    return await db.run(get_project, project_id, tolerance, today)


async def blocker_filter(
    district: Annotated[list[Text] | None, Query(description="District code, name or id; repeatable.")] = None,
    stage: Annotated[list[Text] | None, Query(description="Stage; repeatable.")] = None,
    kind: Annotated[Literal["house", "land"] | None, Query()] = None,
    holdout: Annotated[bool | None, Query(description="Only holdouts (true) or only others (false).")] = None,
    min_overlap: Annotated[AreaM2 | None, Query(description="Only overlaps of at least this many m² (0 to "
                                                            "1000000000).")] = None,
    as_of: AsOf = None,
    sort: Annotated[str, Query(max_length=40, description="overlap_m2, share, days_in_stage, code, district or stage; "
                                           "prefix - for descending.")] = "-overlap_m2",
    limit: Annotated[int | None, Query(ge=1, le=MAX_LIMIT, description="Page size: 100 when not given for json; "
                                       "a download (csv, xlsx, gpkg, shp, kml, fgb) is then the whole list.")] = None,
    offset: Annotated[Offset, Query()] = 0,
    geometry: Annotated[bool, Query(description="Include parcel geometries (WGS 84).")] = False,
) -> BlockerFilter:
    """The blocker list's filters, sort and page from the query string, the same for the JSON, GeoJSON and download
    answers."""
    return BlockerFilter(
        districts=tuple(district or ()), stages=tuple(stage or ()), kind=kind, holdout=holdout,
        min_overlap_m2=min_overlap, as_of=as_of, sort=sort, limit=limit, offset=offset, with_geometry=geometry,
    )


@router.get("/{project_id}/blockers")
async def blockers(
    request: Request,
    project_id: ProjectId,
    db: Db,
    tolerance: Tol,
    today: Today,
    settings: Annotated[Settings, Depends(get_settings)],
    query: Annotated[BlockerFilter, Depends(blocker_filter)],
    principal: Annotated[Principal, Depends(require(Role.viewer))],
    format: Annotated[ListFormat, Query(description="json (a page), geojson (RFC 7946, up to 10,000 without "
                                                       "a limit), or a download of the whole list: csv (UTF-8 with "
                                                       "BOM), xlsx, gpkg, shp (zipped), kml, fgb.")] = "json",
) -> Response:
    """The parcels overlapping the footprint beyond the tolerance and not yet cleared."""
    if format not in ("json", "geojson"):
        return await request.app.state.render_capacity.run(_download, db.engine, project_id, query, tolerance,
                                                           settings, today, format, principal.reveal_personal)
    if format == "json" and not query.with_geometry:
        return await _blockers_json(request, db, project_id, query, tolerance, settings, today,
                                    principal.reveal_personal)
    if format == "geojson":
        query = replace(query, with_geometry=True, limit=query.limit or MAX_LIMIT)
    page = await db.read(find_blockers, project_id, query, tolerance, tz=settings.city_timezone, today=today,
                        reveal_personal=principal.reveal_personal)
    if format == "geojson":
        return Response(orjson.dumps(page.as_geojson()), media_type="application/geo+json")
    return Response(orjson.dumps(page.as_dict()), media_type="application/json")


async def _blockers_json(request: Request, db: Database, project_id: int, query: BlockerFilter,
                         tolerance: Tolerance, settings: Settings, today: date, reveal: bool) -> Response:
    """A JSON page; today's kept by data version (``gis.platform.versioned``): the command centre's screens and
    a meeting room opening one project ask the same page again and again between two changes."""
    build = partial(db.read, blockers_json, project_id, query, tolerance, tz=settings.city_timezone, today=today,
                    reveal_personal=reveal)
    key = await db.read(blockers_key, project_id, query, tolerance, tz=settings.city_timezone, today=today,
                        reveal_personal=reveal)
    if key is None:
        return Response(await build(), media_type="application/json")
    return await versioned_response(request, request.app.state.blocker_cache, key, build,
                                    lambda data, headers: Response(data, media_type="application/json",
                                                                   headers=headers))


def _download(engine: Engine, project_id: int, query: BlockerFilter, tolerance: Tolerance, settings: Settings,
              today: date, fmt: str, reveal: bool) -> Response:
    name, rows = blocker_download(engine, project_id, query, tolerance, today=today, tz=settings.city_timezone)
    base = f"{name}_阻碍地块" + (f"_截至{query.as_of.isoformat()}" if query.as_of else "")
    return export_response(rows, base, fmt, srid=settings.srid, today=today, columns=BLOCKER_EXPORT_COLUMNS,
                           reveal_personal=reveal, title=f"{name} 阻碍地块", tz=settings.city_timezone)


# ---------------------------------------------------------------------------------------------
# Creating, editing, revising and archiving projects (admin). Each write runs in Database.run, whose
# transaction commits before the handler builds its answer: a client is told "saved" only for what is.

# Declared first in each signature (or in the decorator): the role is checked before the project is looked
# up by its code, so a caller without the role learns nothing about which projects exist.
ADMIN = require(Role.admin)
Admin = Annotated[Principal, Depends(ADMIN)]
Config = Annotated[Settings, Depends(get_settings)]
class AlignmentBody(BaseModel):
    """A centre line with its corridor width, or a boundary: GeoJSON here, or a file uploaded beside."""

    model_config = ConfigDict(extra="forbid")
    geometry: dict[str, Any] | None = Field(None, description="GeoJSON (Multi)LineString or (Multi)Polygon; "
                                            "omit when a file is uploaded.")
    crs: Annotated[str, Field(max_length=40, pattern=NO_NUL)] | IntId | None = Field(
        None, description="EPSG code of the coordinates; GeoJSON defaults to 4326.")
    width_m: float | None = corridor_width()
    layer: str | None = Field(None, max_length=200, pattern=NO_NUL, description="The file's layer; in a DXF, the "
                                                                                 "CAD layer.")
    where: str | None = Field(None, max_length=1000, pattern=NO_NUL, description="Attribute filter on the file (OGR "
                                                                                 "SQL), e.g. mode IN ('TRAIN','RER').")

    @field_validator("width_m", mode="before")
    @classmethod
    def _no_bool_width(cls, value: Any) -> Any:
        # A form sends "30" (text, read as a number); JSON must send a number: true is no width.
        if isinstance(value, bool):
            raise ValueError("the corridor width must be a number of metres")  # noqa: TRY004 - pydantic wants it
        return value


class ProjectBody(AlignmentBody):
    code: str = Field(pattern=NO_NUL, description="Short code (lower-case letters, digits, _ and -; at most 40), "
                                                  "e.g. xinan_road; checked by gis.records.projects.")
    name: str = limited("projects", "name", ..., min_length=1)
    kind: Literal["rail", "road", "zone"]
    freeze_date: Day | None = limited("projects", "freeze_date")
    deadline: Day | None = limited("projects", "deadline")


class RevisionBody(AlignmentBody):
    effective_from: Day | None = limited("project_revisions", "effective_from",
                                         description="The day it takes effect (default today).")
    note: str | None = limited("project_revisions", "note", description="Why the alignment changed.")


class ProjectPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = limited("projects", "name", min_length=1)
    freeze_date: Day | None = limited("projects", "freeze_date")
    deadline: Day | None = limited("projects", "deadline")


M = TypeVar("M", bound=BaseModel)


def _either_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a route that takes JSON, or the same fields as a form with a file."""
    schema = model.model_json_schema()
    form = {**schema, "properties": {**schema["properties"], "file": {
        "type": "string", "format": "binary",
        "description": "The line or boundary file (GeoJSON, GeoPackage, zipped Shapefile, KML, DXF) instead of "
                       "`geometry`."}}}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema},
                                                          "multipart/form-data": {"schema": form}}}}


@asynccontextmanager
async def _body(request: Request, model: type[M]) -> AsyncIterator[tuple[M, FilePath | None]]:
    """The request's fields as ``model``, from JSON or a multipart form, and the uploaded file if any
    (kept in a temporary folder for the duration, under a neutral name: ``api.uploads``)."""
    upload = None
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        fields = {k: v for k, v in form.items() if k != "file" and v != ""}
        upload = form.get("file")
    else:
        try:
            fields = await request.json()
        except ValueError:
            raise InvalidInput("the body must be a JSON object or a multipart form", "body") from None
    try:
        body = model.model_validate(fields)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    if not isinstance(upload, StarletteUpload):
        yield body, None
        return
    async with saved_upload(upload) as path:
        yield body, path


def _file_crs(value: str | int | None) -> int | None:
    if value is None:
        return None
    text = str(value).strip().upper().removeprefix("EPSG:")
    if not text.isdigit():
        raise InvalidInput(f"unrecognised CRS {value!r}: give an EPSG code such as 4326 or 4549", "crs")
    return int(text)


def _alignment(conn: Connection, body: AlignmentBody, path: FilePath | None, settings: Settings) -> QueryGeometry:
    if path is not None:
        if body.geometry is not None:
            raise InvalidInput("give a geometry or a file, not both", "geometry")
        return alignment_from_file(conn, path, width_m=body.width_m, layer=body.layer, where=body.where,
                                   crs=_file_crs(body.crs))
    if body.geometry is None:
        raise InvalidInput("give the geometry (GeoJSON) or upload a file", "geometry")
    return parse_geometry(body.geometry, crs=body.crs, width_m=body.width_m, working_srid=settings.srid,
                          extent=city_extent(conn))


def _create(conn: Connection, body: ProjectBody, path: FilePath | None, settings: Settings, actor: str, today: date,
            tolerance: Tolerance) -> dict:
    alignment = _alignment(conn, body, path, settings)
    fields = ProjectFields(body.name, body.freeze_date, body.deadline)
    project_id = add_project(conn, body.code, body.kind, fields, alignment, actor=actor, today=today)
    return get_project(conn, project_id, tolerance, today)


@router.post("", status_code=201, openapi_extra=_either_body(ProjectBody))
async def create_project(request: Request, db: Db, settings: Config, tolerance: Tol, today: Today,
                         principal: Admin) -> dict:
    """Create a project from a centre line with its corridor width, or a boundary (GeoJSON or a file).

    Revision 1 of its alignment is in force from today; the answer is the project with its progress.
    """
    async with _body(request, ProjectBody) as (body, path):
        return await db.run(_create, body, path, settings, principal.name, today, tolerance)


def _preview_new(conn: Connection, body: AlignmentBody, path: FilePath | None, settings: Settings,
                 tolerance: Tolerance, today: date, reveal: bool) -> dict:
    return preview_project(conn, _alignment(conn, body, path, settings), tolerance, today, reveal_personal=reveal)


@router.post("/preview", openapi_extra=_either_body(AlignmentBody))
async def preview_new_project(principal: Admin, request: Request, db: Db, settings: Config, tolerance: Tol,
                              today: Today) -> dict:
    """What a new project would hit, before it is created: its footprint, the parcels in it with their overlap,
    totals and totals by district. Nothing is saved."""
    async with _body(request, AlignmentBody) as (body, path):
        return await db.run(_preview_new, body, path, settings, tolerance, today, principal.reveal_personal)


@router.patch("/{project_id}")
async def patch_project(_admin: Admin, project_id: ProjectId, body: ProjectPatch, db: Db, tolerance: Tol,
                        today: Today) -> dict:
    """Change a project's name or dates (its geometry changes through PUT …/alignment)."""
    def change(conn: Connection) -> dict:
        update_project(conn, project_id, ProjectFields(**body.model_dump()))
        return get_project(conn, project_id, tolerance, today)

    return await db.run(change)


@router.delete("/{project_id}", status_code=204)
async def delete_project(principal: Admin, project_id: ProjectId, db: Db) -> Response:
    """Archive the project: it leaves the lists and maps; its revisions, payments and history stay."""
    await db.run(archive_project, project_id, actor=principal.name)
    return Response(status_code=204)


def _revise(conn: Connection, project_id: int, body: RevisionBody, path: FilePath | None, settings: Settings,
            actor: str, today: date) -> dict:
    alignment = _alignment(conn, body, path, settings)
    revise_alignment(conn, project_id, alignment, actor=actor, today=today, effective_from=body.effective_from,
                     note=body.note)
    return list_revisions(conn, project_id)


@router.put("/{project_id}/alignment", openapi_extra=_either_body(RevisionBody))
async def put_alignment(principal: Admin, project_id: ProjectId, request: Request, db: Db, settings: Config,
                        today: Today) -> dict:
    """A new alignment (改线): a new line and width, or a new boundary. Every revision is kept."""
    async with _body(request, RevisionBody) as (body, path):
        return await db.run(_revise, project_id, body, path, settings, principal.name, today)


def _preview(conn: Connection, project_id: int, body: RevisionBody, path: FilePath | None, settings: Settings,
             tolerance: Tolerance, today: date, reveal: bool) -> dict:
    return preview_revision(conn, project_id, _alignment(conn, body, path, settings), tolerance, today,
                            reveal_personal=reveal)


@router.post("/{project_id}/alignment/preview", openapi_extra=_either_body(RevisionBody))
async def preview_alignment(principal: Admin, project_id: ProjectId, request: Request, db: Db, settings: Config,
                            tolerance: Tol, today: Today) -> dict:
    """What a proposed alignment would change against the current one, without saving it."""
    async with _body(request, RevisionBody) as (body, path):
        return await db.run(_preview, project_id, body, path, settings, tolerance, today, principal.reveal_personal)


@router.get("/{project_id}/revisions")
async def revisions(project_id: AnyProjectId, db: Db,
                    geometry: Annotated[bool, Query(description="Include footprints (GeoJSON, WGS 84).")] = False
                    ) -> dict:
    """Every alignment revision: geometry kind, width, footprint area, who, when, why, the day in force."""
    return await db.run(list_revisions, project_id, with_geometry=geometry)


@router.get("/{project_id}/revisions/{a}/diff/{b}")
async def diff(project_id: AnyProjectId, a: Annotated[IntId, Path()], b: Annotated[IntId, Path()], db: Db,
               tolerance: Tol, today: Today, principal: Annotated[Principal, Depends(require(Role.viewer))]) -> dict:
    """What going from revision a to b does: parcels entering and leaving, overlap gained and lost (m², mu),
    households, holdouts, estimated compensation before and after."""
    return await db.run(revision_diff, project_id, a, b, tolerance, today, reveal_personal=principal.reveal_personal)
