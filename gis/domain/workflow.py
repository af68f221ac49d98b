"""The parcel workflow: its stages, which moves between them are allowed, and who may make them.

Main path (one step at a time): surveyed 调查登记 → appraised 评估 → signed 签约 → paid 补偿款发放
→ demolished 腾空/拆除 → cleared 交地(净地).

Dispute path of the State Council's Decree 590 (2011), for owners who do not agree:
- no_agreement 达不成协议: entered from appraised (no contract within the signing period) or from
  signed (the agreement falls through before payment) — Art. 26;
- compensation_decision 补偿决定: the city government decides the compensation (Art. 26); the
  owner is then paid under the decision (or the money is deposited, 提存), which rejoins the main
  path at **paid**;
- court_enforcement 申请法院强制执行: the owner neither appeals nor moves within the decision's term
  and the government applies to the court (Art. 28); the enforced vacating rejoins at
  **demolished**.
The graph has no cycles, so "back" is well defined: a move to any stage from which the current one can
be reached (by any path, not only the one this parcel took). A late agreement in the dispute path is
such a move, made by an inspector (no_agreement back to signed).

Rules (one ruler for everyone, 一把尺子量到底):
- forward moves follow the graph one edge at a time, for every role;
- a move back needs a reason and the inspector or admin role; the dates of the stages undone are
  cleared (the history keeps them);
- paid and demolished need a recorded payment (Decree 590 Art. 27: compensate first, move after);
- holdout and legacy are flags, not stages: any stage can carry them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache

from gis.domain.stages import ALL_STAGES, STAGE_LABELS_ZH
from gis.platform.errors import Forbidden, InvalidInput

DATE_COLUMNS = {stage: f"{stage}_on" for stage in ALL_STAGES}  # parcels.<stage>_on

FORWARD: dict[str, tuple[str, ...]] = {
    "surveyed": ("appraised",),
    "appraised": ("signed", "no_agreement"),
    "signed": ("paid", "no_agreement"),
    "paid": ("demolished",),
    "demolished": ("cleared",),
    "cleared": (),
    "no_agreement": ("compensation_decision",),
    "compensation_decision": ("paid", "court_enforcement"),
    "court_enforcement": ("demolished",),
}
NEEDS_PAYMENT = frozenset({"paid", "demolished"})
# Compensation is paid under a contract or a decision, never before one.
PAYABLE_STAGES = frozenset({"signed", "paid", "demolished", "cleared", "compensation_decision", "court_enforcement"})


@cache
def descendants(stage: str) -> frozenset[str]:
    """Every stage reachable from ``stage`` by forward moves (not ``stage`` itself)."""
    out: set[str] = set()
    for nxt in FORWARD[stage]:
        out |= {nxt} | descendants(nxt)
    return frozenset(out)


def direction(from_stage: str, to_stage: str) -> str:
    """'same', 'forward' (one allowed step), 'back' (to a stage the current one comes from) or 'invalid'."""
    if from_stage == to_stage:
        return "same"
    if to_stage in FORWARD[from_stage]:
        return "forward"
    if from_stage in descendants(to_stage):
        return "back"
    return "invalid"


@dataclass(frozen=True)
class Transition:
    from_stage: str
    to_stage: str
    direction: str  # forward | back
    on: date
    clear_dates: tuple[str, ...]  # date columns of the stages a back move undoes

    @property
    def set_date(self) -> str | None:
        return DATE_COLUMNS[self.to_stage] if self.direction == "forward" else None


def check_stage(stage: object, where: str = "stage") -> str:
    """``stage`` if it is a stage of the workflow; InvalidInput listing the stages otherwise."""
    if stage not in FORWARD:
        raise InvalidInput(f"unknown stage {stage!r}; stages are {', '.join(ALL_STAGES)}", where)
    return str(stage)


def check_transition(
    from_stage: str,
    to_stage: str,
    *,
    may_go_back: bool,
    reason: str | None,
    payments: int,
    on: date,
    today: date,
    stage_since: date | None,
) -> Transition:
    """The transition ``from_stage → to_stage`` on day ``on``, or the rule it breaks (422 / 403)."""
    to_stage = check_stage(to_stage)
    kind = direction(from_stage, to_stage)
    label = f"{from_stage} ({STAGE_LABELS_ZH[from_stage]}) → {to_stage} ({STAGE_LABELS_ZH[to_stage]})"
    if kind == "same":
        raise InvalidInput(f"the parcel is already at stage {to_stage}", "stage")
    if kind == "invalid":
        allowed = ", ".join(FORWARD[from_stage]) or "none (the last stage)"
        raise InvalidInput(f"{label} is not an allowed move: next stages from {from_stage} are {allowed}", "stage")
    if on > today:
        raise InvalidInput(f"a stage cannot be reached in the future ({on.isoformat()})", "stage_on")
    if stage_since is not None and on < stage_since:
        raise InvalidInput(
            f"{on.isoformat()} is before the current stage began ({stage_since.isoformat()})", "stage_on"
        )
    if kind == "back":
        if not may_go_back:
            raise Forbidden(f"{label} moves back: only an inspector or an admin may do that")
        if not (reason or "").strip():
            raise InvalidInput("moving a stage back needs a reason in 'note'", "note")
        undone = tuple(sorted(DATE_COLUMNS[s] for s in descendants(to_stage)))
        return Transition(from_stage, to_stage, kind, on, undone)
    if to_stage in NEEDS_PAYMENT and payments == 0:
        raise InvalidInput(f"{label}: no compensation payment is recorded for this parcel (先补偿、后搬迁)", "stage")
    return Transition(from_stage, to_stage, kind, on, ())
