"""The sliver rule: an overlap smaller than both an area and a share of its parcel is a survey sliver, not a blocker.

Written once, as one SQL fragment over an overlap row and the dataclass whose values are its bound
parameters; blockers, projects, progress, reports, disclosure, checks, imagery and overlaps all use it.
"""

from __future__ import annotations

from dataclasses import dataclass

from gis.platform.config import Settings


@dataclass(frozen=True)
class Tolerance:
    """Overlaps smaller than both of these are survey slivers, not blockers."""

    min_overlap_m2: float
    min_share: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Tolerance:
        return cls(settings.blocker_min_m2, settings.blocker_min_share)

    @classmethod
    def defaults(cls) -> Tolerance:
        """The settings' default tolerance: for checks that take no settings (their parameters are their own)."""
        fields = Settings.model_fields
        return cls(fields["blocker_min_m2"].default, fields["blocker_min_share"].default)

    def as_dict(self) -> dict[str, float]:
        return {"min_overlap_m2": self.min_overlap_m2, "min_share": self.min_share}

    @property
    def params(self) -> dict[str, float]:
        """The bound parameters of ``tolerance_sql``."""
        return {"min_m2": self.min_overlap_m2, "min_share": self.min_share}


def tolerance_sql(alias: str = "o") -> str:
    """The sliver rule as SQL over an overlap row ``alias`` (columns ``overlap_m2`` and ``share``), the one place
    it is written; its values are the bound parameters of ``Tolerance.params``."""
    return f"{alias}.overlap_m2 >= :min_m2 AND {alias}.share >= :min_share"
