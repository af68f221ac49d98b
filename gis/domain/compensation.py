"""The words of itemised compensation (逐项补偿), stated once: the classes a standard's rate may be set for
(结构、装修等级、附属物和青苗的种类), the survey facts each item needs, and the bounds of those facts.

A standard's *grade* is the class its rate applies to within an item:

- 房屋价值补偿 (house_value): the house's structure class (钢混、砖混、砖木、简易), since appraised unit prices
  are set by structure and location (the district);
- 装修补偿 (decoration): the decoration grade;
- 附属物 (attachments) and 青苗 (crops): the kind of attachment, tree or crop, as the city's table names it
  (围墙、水井、果树 …), free text;
- every other item: no grade (the empty text), one rate for all.

A rate set for no grade ('' ) applies to any class the standards do not name separately.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from gis.domain.limits import Limit
from gis.platform.errors import InvalidInput

STRUCTURES = {"steel_concrete": "钢混", "brick_concrete": "砖混", "brick_wood": "砖木", "simple": "简易"}
DECORATIONS = {"none": "无装修", "simple": "简易装修", "medium": "中等装修", "fine": "精装修"}
# Items whose grade is a closed vocabulary, and those whose grade is the kind counted in the survey.
GRADED = {"house_value": STRUCTURES, "decoration": DECORATIONS}
COUNTED = ("attachments", "crops")
NO_GRADE = ""
MAX_GRADE = 40  # characters of a kind of attachment or crop (钢筋混凝土结构围墙)

# The survey facts (调查登记) of a parcel the items need, with their bounds: declared here once for the schema,
# the API's models and the import.
BUSINESS_AREA_M2 = Limit(ge=0, le=1_000_000)
TRANSITION_MONTHS = Limit(ge=0, le=120)  # a transition longer than ten years is a typing error
COUNT_QUANTITY = Limit(gt=0, le=10_000_000)  # trees, metres of wall, mu of crops

_ALIASES = {
    **{v: k for vocab in GRADED.values() for k, v in vocab.items()},
    "钢混结构": "steel_concrete", "框架": "steel_concrete", "钢筋混凝土": "steel_concrete",
    "砖混结构": "brick_concrete", "砖木结构": "brick_wood", "简易结构": "simple", "简易房": "simple",
    "毛坯": "none", "无": "none", "简装": "simple", "中装": "medium", "精装": "fine", "豪华装修": "fine",
}


def parse_grade(item: str, value: object) -> str:
    """The grade of ``item`` from a cell (code or Chinese); '' when blank. ValueError when the item takes no
    grade, or the value is no class of its vocabulary."""
    text = "" if value is None else str(value).strip()
    if text.lower() == "nan":
        text = ""
    if not text:
        return NO_GRADE
    if "\x00" in text:
        raise ValueError("grade must not contain NUL (0x00) characters")
    if item in GRADED:
        vocab = GRADED[item]
        code = text if text in vocab else _ALIASES.get(text)
        if code not in vocab:
            listed = "、".join(f"{v} ({k})" for k, v in vocab.items())
            raise ValueError(f"unknown grade of {item}; grades are {listed}")  # not echoed: it may be anything
        return code
    if item in COUNTED:
        if len(text) > MAX_GRADE:
            raise ValueError(f"grade is longer than {MAX_GRADE} characters")
        return text
    raise ValueError(f"{item} takes no grade (等级/种类): one rate for all")


def grade_label(item: str, grade: str) -> str:
    """The grade as people read it: 砖混, 精装修, 果树; '' for none."""
    return GRADED.get(item, {}).get(grade, grade)


@dataclass(frozen=True)
class Count:
    """An attachment or a crop counted in the survey: its kind (grade) and quantity, in its standard's unit."""

    item: str
    grade: str
    quantity: Decimal


@dataclass(frozen=True)
class SurveyFacts:
    """A parcel's survey facts, as the items need them (None: not recorded)."""

    structure: str | None = None
    decoration: str | None = None
    business_area_m2: Decimal | None = None
    transition_months: int | None = None
    counts: tuple[Count, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON's types, with the Chinese labels of the classes."""
        return {"structure": self.structure, "structure_label": STRUCTURES.get(self.structure or ""),
                "decoration": self.decoration, "decoration_label": DECORATIONS.get(self.decoration or ""),
                "business_area_m2": None if self.business_area_m2 is None else float(self.business_area_m2),
                "transition_months": self.transition_months,
                "counts": [{"item": c.item, "grade": c.grade, "quantity": float(c.quantity)} for c in self.counts]}


SURVEY_FIELDS = ("structure", "decoration", "business_area_m2", "transition_months", "counts")
MAX_COUNTS = 100


def number(values: Mapping[str, Any], name: str, limit: Limit, *, required: bool = False,
           where: str | None = None) -> Decimal | None:
    """``values[name]`` as a Decimal within ``limit``; None when absent and not required. InvalidInput names
    ``where`` (the field by default)."""
    where = where or name
    value = values.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidInput(f"{name} is required", where)
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise InvalidInput(f"{name} must be a number", where)
    try:
        found = Decimal(str(value).strip())
    except ArithmeticError:
        raise InvalidInput(f"{name} must be a number", where) from None
    if not found.is_finite():
        raise InvalidInput(f"{name} must be a finite number", where)
    problem = limit.problem(found)
    if problem:
        raise InvalidInput(f"{name} {problem}", where)
    return found


def parse_counts(value: Any, items: tuple[str, ...] = COUNTED) -> tuple[Count, ...]:
    """Counted attachments and crops from a list of {item, grade, quantity}; InvalidInput names the entry."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_COUNTS:
        raise InvalidInput(f"counts must be a list of at most {MAX_COUNTS} entries", "counts")
    counts: dict[tuple[str, str], Count] = {}
    for n, c in enumerate(value):
        where = f"counts[{n}]"
        if not isinstance(c, Mapping) or c.get("item") not in items:
            raise InvalidInput(f"{where}.item must be one of {', '.join(items)}", f"{where}.item")
        try:
            grade = parse_grade(c["item"], c.get("grade"))
        except ValueError as exc:
            raise InvalidInput(str(exc), f"{where}.grade") from None
        if not grade:
            raise InvalidInput(f"{where}.grade (种类) is required", f"{where}.grade")
        if (c["item"], grade) in counts:
            raise InvalidInput(f"{where} repeats {c['item']} {grade!r}: one count per kind", where)
        quantity = number(c, "quantity", COUNT_QUANTITY, required=True, where=f"{where}.quantity")
        counts[(c["item"], grade)] = Count(c["item"], grade, quantity)  # type: ignore[arg-type]
    return tuple(counts.values())


def parse_survey(values: Mapping[str, Any], items: tuple[str, ...] = COUNTED) -> SurveyFacts:
    """Survey facts from plain values (codes or Chinese for the classes), each within its bounds; InvalidInput
    names the field."""
    grades: dict[str, str | None] = {}
    for name, item in (("structure", "house_value"), ("decoration", "decoration")):
        try:
            grades[name] = parse_grade(item, values.get(name)) or None
        except ValueError as exc:
            raise InvalidInput(str(exc), name) from None
    months = number(values, "transition_months", TRANSITION_MONTHS)
    if months is not None and months != months.to_integral_value():
        raise InvalidInput("transition_months must be a whole number", "transition_months")
    return SurveyFacts(structure=grades["structure"], decoration=grades["decoration"],
                       business_area_m2=number(values, "business_area_m2", BUSINESS_AREA_M2),
                       transition_months=int(months) if months is not None else None,
                       counts=parse_counts(values.get("counts"), items))
