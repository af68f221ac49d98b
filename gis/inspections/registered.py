"""The checks of this package, as entries of ``gis.checks.CHECKS`` (the API's /checks, the CLI, the reports)."""

from __future__ import annotations

from gis.checks import Check
from gis.inspections.demolition import DemolitionIncomplete, demolition_incomplete
from gis.inspections.post_freeze import PostFreeze, post_freeze
from gis.inspections.priority import StalledPriority, stalled_priority
from gis.inspections.sunshine import Sunshine, sunshine

MORE_CHECKS: tuple[Check, ...] = (
    Check("sunshine", "有没有阳光征迁", Sunshine, sunshine),
    Check("stalled_priority", "久拖未决（按优先）", StalledPriority, stalled_priority),
    Check("demolition_incomplete", "拆除不到位", DemolitionIncomplete, demolition_incomplete),
    Check("post_freeze", "抢栽抢种、偷建私建", PostFreeze, post_freeze),
)
