"""One parcel: its record and timeline, edits (If-Match / version), payments and archive documents."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Header, Query, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from api.auth import Principal, Role, require, require_any
from api.deps import NO_NUL, BigId, Conn, Day, IntId, Text, get_settings, get_today, limited
from gis.domain.limits import MAX_INT32, MAX_NOTE
from gis.platform.config import Settings
from gis.platform.errors import InvalidInput, VersionRequired
from gis.records import documents as archive
from gis.records import parcels

router = APIRouter(tags=["parcels"])

Reader = Annotated[Principal, Depends(require(Role.viewer))]
Editor = Annotated[Principal, Depends(require(Role.district_editor))]  # + inspectors for back moves, + admins
Recorder = Annotated[Principal, Depends(require_any(Role.district_editor, Role.admin))]
_ETAG = re.compile(r'^\s*(?:W/)?"?(\d{1,10})"?\s*$')


def _etag(version: int) -> str:
    return f'"{version}"'


# Before /parcels/{parcel_id}: "search" is not a parcel id.
@router.get("/parcels/search")
def search(
    principal: Reader, conn: Conn,
    code: Annotated[str | None, Query(max_length=100, description="Any part of the parcel code.")] = None,
    district: Annotated[str | None, Query(max_length=100, description="District code, name or id.")] = None,
    owner: Annotated[str | None, Query(max_length=100, description="Any part of the owner's name (roles that "
                                                                   "may see personal data only).")] = None,
    limit: Annotated[int, Query(ge=1, le=parcels.SEARCH_LIMIT)] = 50,
) -> dict[str, Any]:
    """Parcels by code, district or owner (all given criteria together), in code order, with the total found."""
    return parcels.search_parcels(conn, code=code, district=district, owner=owner,
                                  reveal_personal=principal.reveal_personal, limit=limit)


@router.get("/parcels/{parcel_id}")
def get_parcel(parcel_id: BigId, principal: Reader, conn: Conn, response: Response) -> dict[str, Any]:
    """The parcel with its timeline (every recorded change), payments and documents. ETag = its version."""
    reveal = principal.reveal_personal
    out = parcels.get_parcel(conn, parcel_id, reveal_personal=reveal)
    out["timeline"] = parcels.history(conn, parcel_id, reveal_personal=reveal)
    out["payments"] = parcels.list_payments(conn, parcel_id)
    out["documents"] = archive.list_documents(conn, parcel_id, reveal_personal=reveal)
    response.headers["ETag"] = _etag(out["version"])
    return out


@router.get("/parcels/{parcel_id}/history")
def get_history(parcel_id: BigId, principal: Reader, conn: Conn) -> list[dict[str, Any]]:
    """Every change, oldest first: who, when, kind, from → to (``changes``), note."""
    return parcels.history(conn, parcel_id, reveal_personal=principal.reveal_personal)


class ParcelPatch(BaseModel):
    """Fields to change; omitted fields stay. ``version`` (or the If-Match header) is the version you read."""

    model_config = ConfigDict(extra="forbid")
    version: int | None = Field(None, ge=0, le=MAX_INT32, description="The version the edit is based on (or send "
                                                                      "If-Match); a stale one is a 412.")
    stage: Text | None = Field(None, max_length=40)
    stage_on: Day | None = Field(None, description="The day the stage was reached (1980-01-01 to today); default "
                                                   "today.")
    note: str | None = Field(None, max_length=MAX_NOTE, pattern=NO_NUL,
                             description="Why; required to move a stage back.")
    holdout: StrictBool | None = None
    legacy: StrictBool | None = None
    holdout_note: str | None = limited("parcels", "holdout_note")
    kind: Literal["house", "land"] | None = None
    district_id: IntId | None = None
    owner_name: str | None = limited("parcels", "owner_name")
    owner_id_number: str | None = limited("parcels", "owner_id_number")
    owner_phone: str | None = limited("parcels", "owner_phone")
    households: int | None = limited("parcels", "households")
    floor_area_m2: float | None = limited("parcels", "floor_area_m2")
    land_area_mu: float | None = limited("parcels", "land_area_mu")
    geometry: dict | None = Field(None, description="GeoJSON Polygon or MultiPolygon (EPSG:4326 unless "
                                                    "geometry_crs says otherwise).")
    geometry_crs: Text | None = Field(None, max_length=40)


def _version(if_match: str | None, body_version: int | None) -> int:
    if if_match is not None:
        m = _ETAG.match(if_match)
        if not m:
            raise InvalidInput('If-Match must be the ETag you read, such as "3"', "If-Match")
        if body_version is not None and body_version != int(m.group(1)):
            raise InvalidInput("If-Match and version disagree", "version")
        return int(m.group(1))
    if body_version is None:
        raise VersionRequired('say which version you edit: send If-Match: "<version>" (the ETag) or "version"')
    return body_version


@router.patch("/parcels/{parcel_id}")
def patch_parcel(
    parcel_id: BigId,
    body: ParcelPatch,
    principal: Editor,
    conn: Conn,
    response: Response,
    settings: Annotated[Settings, Depends(get_settings)],
    today: Annotated[date, Depends(get_today)],
    if_match: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """Edit a parcel if it is still at the version you read; a stale version gets 412 and changes nothing."""
    given = body.model_fields_set
    edit = parcels.ParcelEdit(
        values={k: getattr(body, k) for k in given if k in parcels.ATTRIBUTE_FIELDS + parcels.FLAG_FIELDS},
        stage=body.stage,
        stage_on=body.stage_on,
        geometry=body.geometry,
        geometry_crs=body.geometry_crs,
        note=body.note,
    )
    version = parcels.update_parcel(
        conn, parcel_id, edit, version=_version(if_match, body.version), principal=principal, today=today,
        srid=settings.srid, require_documents=settings.workflow_require_documents,
    )
    response.headers["ETag"] = _etag(version)
    return parcels.get_parcel(conn, parcel_id, reveal_personal=principal.reveal_personal)


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    paid_on: Day = limited("payments", "paid_on", ...)
    amount_yuan: Decimal = limited("payments", "amount_yuan", ..., max_digits=14, decimal_places=2)
    item: Text = Field(max_length=40, description=f"One of {', '.join(parcels.PAYMENT_ITEMS)}.")
    project_id: IntId | None = None
    basis_area: float | None = limited("payments", "basis_area")
    basis_unit: Literal["m2", "mu"] | None = None
    rate_yuan: Decimal | None = limited("payments", "rate_yuan", max_digits=14, decimal_places=2)
    note: str | None = limited("payments", "note")


@router.get("/parcels/{parcel_id}/payments")
def get_payments(parcel_id: BigId, _principal: Reader, conn: Conn) -> list[dict[str, Any]]:
    """The compensation payments recorded on a parcel, by date paid: amount, item, basis, rate, who recorded them.
    Any signed-in user; 404 for an unknown parcel."""
    parcels.get_parcel(conn, parcel_id, with_geometry=False)  # 404 for an unknown parcel
    return parcels.list_payments(conn, parcel_id)


@router.post("/parcels/{parcel_id}/payments", status_code=201)
def post_payment(
    parcel_id: BigId, body: PaymentIn, principal: Recorder, conn: Conn, today: Annotated[date, Depends(get_today)]
) -> dict[str, Any]:
    """Record a compensation payment on a parcel the caller may edit (signed or decided stages only)."""
    return parcels.record_payment(conn, parcel_id, parcels.Payment(**body.model_dump()), principal=principal,
                                  today=today)


@router.get("/parcels/{parcel_id}/documents")
def get_documents(parcel_id: BigId, principal: Reader, conn: Conn) -> list[dict[str, Any]]:
    """A parcel's archive documents, oldest first: kind, size, SHA-256, uploader; the original file name only for
    inspectors and admins. Any signed-in user; 404 for an unknown parcel."""
    return archive.list_documents(conn, parcel_id, reveal_personal=principal.reveal_personal)


@router.post("/parcels/{parcel_id}/documents", status_code=201)
def post_document(
    parcel_id: BigId,
    file: Annotated[UploadFile, File(description="The scanned document.")],
    kind: Annotated[str, Form(description="contract, appraisal_report, ... (see /document-requirements)")],
    principal: Recorder,
    conn: Conn,
    settings: Annotated[Settings, Depends(get_settings)],
) -> dict[str, Any]:
    """Archive a file for the parcel: stored under its SHA-256, with kind, uploader and time."""
    return archive.store_document(
        conn, parcel_id, kind=kind, filename=file.filename, chunks=iter(lambda: file.file.read(1 << 20), b""),
        data_dir=settings.data_dir, max_bytes=settings.document_max_bytes, principal=principal,
    )


@router.get("/document-requirements", dependencies=[Depends(require(Role.viewer))])
def get_requirements(conn: Conn) -> dict[str, list[str]]:
    """The document kinds each stage requires in a parcel's archive."""
    return archive.document_requirements(conn)


@router.put("/document-requirements", dependencies=[Depends(require(Role.admin))])
def put_requirements(body: dict[str, list[str]], conn: Conn) -> dict[str, list[str]]:
    """Replace the requirements: ``{"signed": ["contract"], ...}``."""
    return archive.set_document_requirements(conn, body)
