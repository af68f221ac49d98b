"""The words people read (stages, kinds, field labels), for clients that draw their own tables and maps."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from api.auth import Role, require
from gis.domain.schema import labels

router = APIRouter(tags=["labels"], dependencies=[Depends(require(Role.viewer))])


@router.get("/labels")
def get_labels() -> dict[str, Any]:
    """The stages in workflow order with their Chinese labels, the parcel kinds, and each parcel field's label and
    whether it holds personal data: what a notebook or a desktop GIS needs to show the service's words."""
    return labels()
