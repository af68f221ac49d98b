"""Parcel imports by upload, and the saved field-mapping profiles they use."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, Role, require, require_any
from api.deps import NO_NUL, Conn, IntId, Text, get_settings
from api.uploads import kept_upload, upload_name
from gis.io import profiles as profile_store
from gis.platform.config import Settings
from gis.platform.errors import InvalidInput
from gis.records.importer import import_file

router = APIRouter(tags=["imports"])

Importer = Annotated[Principal, Depends(require_any(Role.district_editor, Role.admin))]


def _json_object(value: str | None, where: str) -> dict[str, Any] | None:
    if not value:
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{where} must be a JSON object: {exc.msg}", where) from None
    if not isinstance(parsed, dict):
        raise InvalidInput(f"{where} must be a JSON object", where)
    return parsed


@router.post("/imports")
def post_import(
    principal: Importer,
    conn: Conn,
    settings: Annotated[Settings, Depends(get_settings)],
    file: Annotated[UploadFile, File(description="GeoPackage, zipped Shapefile, GeoJSON, FlatGeobuf, KML, CSV, XLSX")],
    profile: Annotated[Text | None, Form(max_length=64, description="A saved import profile")] = None,
    mapping: Annotated[Text | None, Form(max_length=20_000,
                                         description='JSON: {"column": "field", ...}, on top of the profile')] = None,
    defaults: Annotated[Text | None, Form(max_length=20_000,
                                          description='JSON: {"field": value}, for rows that lack it')] = None,
    crs: Annotated[IntId | None, Form(description="EPSG code of the coordinates, when the file states none")] = None,
    dry_run: Annotated[bool, Form(description="Check and count, write nothing")] = False,
) -> JSONResponse:
    """Import parcels: all rows or none. 200 with the report; 422 with the report when rows are rejected.

    District editors may import parcels of their own districts only. Uploads over the configured size
    get 413.
    """
    with kept_upload(file) as path:
        allowed = None if principal.role == Role.admin else set(principal.district_ids)
        report = import_file(
            conn, path, profile=profile, mapping=_json_object(mapping, "mapping"),
            defaults=_json_object(defaults, "defaults"), crs=crs, dry_run=dry_run, actor=principal.name,
            file_name=upload_name(file), settings=settings, allowed_districts=allowed,
        )
    body = report.as_dict()
    if not report.ok:
        return JSONResponse({"detail": f"{report.rejected} rows rejected; nothing was imported", "report": body},
                            status_code=422)
    return JSONResponse(body)


class ProfileBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    description: str | None = Field(None, max_length=500, pattern=NO_NUL)
    mapping: dict[str, str] = Field(default_factory=dict, description="column → parcel field (or - to leave out)")
    defaults: dict[str, Any] = Field(default_factory=dict, description="field → value for rows that lack it")
    crs: IntId | None = None
    options: dict[str, Any] = Field(default_factory=dict, description="auto, layer, sheet, encoding")


@router.get("/imports/profiles", dependencies=[Depends(require(Role.district_editor))])
def get_profiles(conn: Conn) -> list[dict[str, Any]]:
    """The saved import profiles."""
    return [p.as_dict() for p in profile_store.list_profiles(conn)]


@router.get("/imports/profiles/{name}", dependencies=[Depends(require(Role.district_editor))])
def get_profile(name: str, conn: Conn) -> dict[str, Any]:
    """One saved import profile: field mapping, defaults, CRS and options (district editors, inspectors, admins).
    404, naming the saved ones, for an unknown name."""
    return profile_store.get_profile(conn, name).as_dict()


@router.post("/imports/profiles", status_code=201, dependencies=[Depends(require_any(Role.district_editor,
                                                                                       Role.admin))])
def post_profile(body: ProfileBody, conn: Conn) -> dict[str, Any]:
    """Save a profile (replacing one of the same name)."""
    return profile_store.save_profile(conn, profile_store.Profile(**body.model_dump())).as_dict()


@router.delete("/imports/profiles/{name}", status_code=204, dependencies=[Depends(require(Role.admin))])
def delete_profile(name: str, conn: Conn) -> None:
    """Delete a saved import profile (admins). 404 for an unknown name."""
    profile_store.delete_profile(conn, name)
