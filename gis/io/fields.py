"""The parcel fields a file can fill, the column names that name them, and reading cell values.

Column names are matched after normalising (Unicode NFKC, so full-width brackets and ㎡ become
ASCII; case and blanks ignored). Each field lists its names in order of preference: when a file has
two columns for one field (片区代码 and 片区), the first listed wins and the other is left unused.

Values are converted column by column on the distinct values only, so a million rows of a few
hundred different stages or districts cost a few hundred conversions. A value that cannot be read
is reported with its row and field; values of personal fields are never echoed in messages.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from gis.domain.privacy import PERSONAL_FIELDS
from gis.domain.stages import KIND_LABELS_ZH, STAGE_LABELS_ZH
from gis.domain.workflow import ALL_STAGES, DATE_COLUMNS
from gis.platform.config import SQM_PER_MU


@dataclass(frozen=True)
class Field:
    name: str
    label: str  # Chinese, for reports
    type: str  # text | int | float | date | bool | kind | stage | district
    names: tuple[str, ...]  # column names that mean this field, preferred first
    stored_as: str | None = None  # a unit variant: the parcel column it fills (land_area_m2 → land_area_mu)
    factor: float = 1.0  # multiply the value by this to get the stored unit

    @property
    def column(self) -> str:
        return self.stored_as or self.name


_STAGE_DATE_NAMES = {
    "surveyed": ("调查登记日期", "调查日期", "登记日期"),
    "appraised": ("评估日期",),
    "signed": ("签约日期", "协议签订日期"),
    "paid": ("补偿款发放日期", "付款日期", "兑付日期", "补偿日期"),
    "demolished": ("拆除日期", "腾空日期", "腾空/拆除日期"),
    "cleared": ("交地日期", "净地日期", "交地(净地)日期"),
    "no_agreement": ("达不成协议日期",),
    "compensation_decision": ("补偿决定日期",),
    "court_enforcement": ("申请强制执行日期", "申请法院强制执行日期"),
}
# Shapefile field names (at most 10 bytes) of the stage dates, used by exports and recognised on import.
SHORT_DATE_NAMES = {
    "surveyed": "surveyed", "appraised": "appraised", "signed": "signed", "paid": "paid",
    "demolished": "demolished", "cleared": "cleared", "no_agreement": "no_agree",
    "compensation_decision": "comp_dec", "court_enforcement": "court_enf",
}

FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field("code", "地块编号", "text", (
            "code", "parcel_code", "宗地代码", "宗地编码", "宗地号", "地块编号", "地块编码", "地块代码", "地块号",
            "不动产单元号", "编号", "parcel_id",
        )),
        Field("kind", "类型", "kind", ("kind", "类型", "地块类型", "征收类型", "类别", "地类", "type")),
        Field("district", "片区", "district", (
            "district", "district_code", "片区代码", "片区编码", "district_name", "dist_name", "片区", "所属片区",
            "乡镇街道", "街道", "乡镇", "行政区", "所属乡镇",
        )),
        Field("owner_name", "权利人", "text", (
            "owner_name", "owner", "权利人", "权利人名称", "被征收人", "户主", "户主姓名", "姓名",
        )),
        Field("owner_id_number", "身份证号", "text", (
            "owner_id_number", "owner_id", "id_number", "身份证号", "身份证号码", "公民身份号码", "证件号码",
            "权利人证件号",
        )),
        Field("owner_phone", "联系电话", "text", (
            "owner_phone", "phone", "联系电话", "电话", "电话号码", "手机", "手机号", "手机号码", "联系方式",
        )),
        Field("households", "户数", "int", ("households", "户数", "户")),
        Field("floor_area_m2", "建筑面积(㎡)", "float", (
            "floor_area_m2", "floor_m2", "floor_area", "建筑面积(m2)", "建筑面积", "房屋面积(m2)", "房屋面积",
            "房屋建筑面积", "建筑面积(平方米)", "房屋面积(平方米)",
        )),
        Field("land_area_mu", "土地面积(亩)", "float", (
            "land_area_mu", "land_mu", "土地面积(亩)", "面积(亩)", "用地面积(亩)", "征收面积(亩)", "征地面积(亩)",
            "宗地面积(亩)",
        )),
        Field("land_area_m2", "土地面积(㎡)", "float", (
            "land_area_m2", "土地面积(m2)", "土地面积(平方米)", "用地面积(m2)", "用地面积(平方米)",
            "宗地面积(m2)", "宗地面积(平方米)", "宗地面积",
        ), stored_as="land_area_mu", factor=1.0 / SQM_PER_MU),
        Field("stage", "阶段", "stage", ("stage", "阶段", "进度", "征迁进度", "征收阶段", "状态", "当前阶段")),
        Field("stage_since", "阶段起始日期", "date", (
            "stage_since", "stage_date", "阶段起始日期", "阶段日期", "进度日期",
        )),
        Field("holdout", "钉子户", "bool", ("holdout", "钉子户", "是否钉子户", "重点户", "难缠户")),
        Field("legacy", "历史遗留", "bool", ("legacy", "历史遗留", "历史遗留问题", "是否历史遗留")),
        Field("holdout_note", "难点说明", "text", ("holdout_note", "hold_note", "难点说明", "钉子户说明", "情况说明")),
        *(
            Field(column, names[0], "date", (column, SHORT_DATE_NAMES[stage], *names))
            for stage, column in DATE_COLUMNS.items()
            for names in [_STAGE_DATE_NAMES[stage]]
        ),
    )
}

# Columns that give a row's geometry in CSV and XLSX files, and the vertex tables of boundary points
# (界址点坐标表: one row per vertex, in order, rows of a parcel sharing its code).
GEOMETRY_ROLES: dict[str, tuple[str, ...]] = {
    "wkt": ("wkt", "geometry", "geom", "the_geom", "shape", "几何", "图形", "坐标串", "边界"),
    "lon": ("lon", "lng", "long", "longitude", "经度", "x", "x坐标", "东坐标"),
    "lat": ("lat", "latitude", "纬度", "y", "y坐标", "北坐标"),
    "point_no": ("point_no", "点号", "界址点号", "序号", "点序号"),
    "ring_no": ("ring_no", "圈号", "环号"),
}
IGNORE = {"", "-", "ignore"}

KIND_VALUES = {
    **{v: "house" for v in ("house", "h", "房屋", "房", "住宅", "民房", "厂房", "房产", "建筑", "建筑物")},
    **{v: "land" for v in (
        "land", "l", "土地", "地", "耕地", "林地", "园地", "草地", "水田", "旱地", "农用地", "建设用地", "集体土地",
        "国有土地", "宅基地", "未利用地", "空地",
    )},
    **{label: kind for kind, label in KIND_LABELS_ZH.items()},
}
STAGE_VALUES = {
    **{stage: stage for stage in ALL_STAGES},
    **{label: stage for stage, label in STAGE_LABELS_ZH.items()},
    "调查": "surveyed", "已调查": "surveyed", "已登记": "surveyed", "摸底": "surveyed",
    "已评估": "appraised",
    "已签约": "signed",
    "付款": "paid", "已付款": "paid", "已补偿": "paid", "兑付": "paid", "已兑付": "paid",
    "腾空": "demolished", "拆除": "demolished", "已拆除": "demolished", "已腾空": "demolished",
    "交地": "cleared", "净地": "cleared", "已交地": "cleared",
    "强制执行": "court_enforcement",
}
TRUE_VALUES = {"true", "t", "yes", "y", "1", "1.0", "是", "√", "✓", "有"}
FALSE_VALUES = {"false", "f", "no", "n", "0", "0.0", "否", "×", "无"}
TOTAL_LABELS = ("合计", "总计", "小计", "total")
_UNIT_SUFFIX = re.compile(r"(m2|平方米|亩|元)$")
_DATE_PATTERN = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ t].*)?$")


def normalise(name: object) -> str:
    """A column name or a vocabulary value as compared: NFKC, lower case, no blanks."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(name))).lower()


_FIELD_BY_NAME: dict[str, tuple[int, str]] = {}
for _field in FIELDS.values():
    for _rank, _name in enumerate(_field.names):
        _FIELD_BY_NAME.setdefault(normalise(_name), (_rank, _field.name))
_ROLE_BY_NAME = {normalise(n): role for role, names in GEOMETRY_ROLES.items() for n in names}
_NORMALISED = {
    "kind": {normalise(k): v for k, v in KIND_VALUES.items()},
    "stage": {normalise(k): v for k, v in STAGE_VALUES.items()},
}


def known_target(target: str) -> bool:
    """Whether a column may be mapped to ``target``: a parcel field or a geometry role (wkt, lon, ...)."""
    return target in FIELDS or target in GEOMETRY_ROLES


def auto_mapping(columns: Iterable[str], *, with_geometry_roles: bool) -> dict[str, str]:
    """column → field (or geometry role) for the columns whose names are recognised."""
    best: dict[str, tuple[int, str]] = {}
    for column in columns:
        key = normalise(column)
        hit = _FIELD_BY_NAME.get(key)
        if hit is None and with_geometry_roles and key in _ROLE_BY_NAME:
            hit = (0, _ROLE_BY_NAME[key])
        if hit is None:
            continue
        rank, target = hit
        if target not in best or rank < best[target][0]:
            best[target] = (rank, column)
    return {column: target for target, (_rank, column) in best.items()}


# ---------------------------------------------------------------------------------------------
# Values


@dataclass
class Converted:
    values: pd.Series  # converted, None / NA where empty or unreadable (a file's text stays Arrow text)
    bad: np.ndarray  # bool: a value was there but could not be read
    masked: np.ndarray | None = None  # bool: a masked personal value (张*明), ignored


def is_blank(values: pd.Series) -> np.ndarray:
    """True where a cell is empty: None, NaN, NaT or only blanks."""
    missing = values.isna().to_numpy()
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        text = values.astype("string").str.strip()
        return missing | (text == "").fillna(True).to_numpy(dtype=bool)
    return missing


def _by_distinct(values: pd.Series, convert: Callable[[Any], Any]) -> tuple[pd.Series, np.ndarray]:
    """Convert each distinct value once; return the results and where conversion failed."""
    codes, uniques = pd.factorize(values if isinstance(values.dtype, pd.StringDtype) else values.astype(object),
                                  use_na_sentinel=True)
    failed = object()
    out_uniques = []
    for u in uniques:
        try:
            out_uniques.append(convert(u))
        except (ValueError, TypeError, OverflowError):
            out_uniques.append(failed)
    mapped = np.array([*out_uniques, None], dtype=object)[codes]  # code -1 (missing) picks the trailing None
    bad = np.array([v is failed for v in out_uniques] + [False], dtype=bool)[codes]
    mapped[bad] = None
    return pd.Series(mapped, index=values.index, dtype=object), bad


def _text(value: Any) -> str | None:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a code typed into Excel as a number
    text = str(value).strip()
    return text or None


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        number = float(value)
    else:
        text = normalise(value).replace(",", "")
        if not text:
            return None
        number = float(_UNIT_SUFFIX.sub("", text))
    if not np.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _integer(value: Any) -> int | None:
    number = _number(value)
    if number is None:
        return None
    if not float(number).is_integer():
        raise ValueError("not a whole number")
    return int(number)


def _date(value: Any) -> date | None:
    if isinstance(value, datetime | pd.Timestamp):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).date()
    text = normalise(value)
    if not text:
        return None
    match = _DATE_PATTERN.match(text)
    if match:
        return date(int(match[1]), int(match[2]), int(match[3]))
    if re.fullmatch(r"\d{8}", text):
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    raise ValueError("not a date")


def cell_date(value: Any) -> date | None:
    """A cell as a date, read as the parcel import reads it (a date cell, 2025-03-18, 2025/3/18, 2025年3月18日,
    20250318); None when empty, ValueError when it is no date. For other readers of planners' sheets."""
    return _date(value)


def _boolean(value: Any) -> bool | None:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = normalise(value)
    if not text:
        return None
    if text in TRUE_VALUES:
        return True
    if text in FALSE_VALUES:
        return False
    raise ValueError("not yes/no")


def _vocabulary(kind: str) -> Callable[[Any], str | None]:
    table = _NORMALISED[kind]

    def convert(value: Any) -> str | None:
        text = normalise(value)
        if not text:
            return None
        if text not in table:
            raise ValueError(f"unknown {kind}")
        return table[text]

    return convert


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "text": _text, "district": _text, "float": _number, "int": _integer, "date": _date, "bool": _boolean,
    "kind": _vocabulary("kind"), "stage": _vocabulary("stage"),
}


def _as_objects(values: pd.Series) -> pd.Series:
    """An object Series with None (not NaN or NA) for missing values."""
    out = values.astype(object)
    return out.where(values.notna(), None)


def convert(field: Field, values: pd.Series) -> Converted:
    """The column's values as ``field`` values (whole columns at a time where the file typed them)."""
    dtype = values.dtype
    no_bad = np.zeros(len(values), dtype=bool)
    if field.type in ("text", "district") and isinstance(dtype, pd.StringDtype):
        stripped = values.str.strip()
        converted = stripped.where(stripped != "")  # still text (Arrow's, from a vector file): no object per cell
        bad = no_bad
    elif field.type == "float" and pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        numbers = pd.to_numeric(values, errors="coerce").astype("Float64") * field.factor
        bad = ~np.isfinite(numbers.fillna(0).to_numpy(dtype=float))
        numbers[bad] = pd.NA
        return Converted(_as_objects(numbers), bad)
    elif (field.type == "int" and pd.api.types.is_integer_dtype(dtype)) or (
        field.type == "bool" and pd.api.types.is_bool_dtype(dtype)
    ):
        return Converted(_as_objects(values), no_bad)
    elif field.type == "date" and isinstance(dtype, pd.ArrowDtype) and pa.types.is_date32(dtype.pyarrow_dtype):
        return Converted(values, no_bad)  # a file's date column (GeoPackage, FlatGeobuf …), read by Arrow
    elif field.type == "date" and pd.api.types.is_datetime64_any_dtype(dtype):
        return Converted(_as_objects(values.dt.date.where(values.notna(), None)), no_bad)
    else:
        converted, bad = _by_distinct(values, _CONVERTERS[field.type])
        if field.factor != 1.0:
            converted = converted.map(lambda v: None if v is None else v * field.factor)
    masked = None
    if field.name in PERSONAL_FIELDS:
        text = converted if isinstance(converted.dtype, pd.StringDtype) else converted.astype("string")
        masked = text.str.contains("*", regex=False).fillna(False).to_numpy(dtype=bool)
        converted[masked] = None
    return Converted(converted, bad, masked)


def value_problem(field: Field) -> str:
    """Why a value of ``field`` was refused, without quoting personal values."""
    hints = {
        "int": "a whole number",
        "float": "a number",
        "date": "a date such as 2025-03-18",
        "bool": "是/否 or yes/no",
        "kind": "房屋/土地 (house/land)",
        "stage": "a stage such as 调查登记, 评估, 签约, 补偿款发放, 腾空/拆除, 交地(净地) (or surveyed … cleared)",
    }
    return f"{field.name} ({field.label}) must be {hints.get(field.type, 'text')}"


def describe_value(field: Field, value: Any) -> str:
    """A refused value as it may be shown: personal values are not."""
    if field.name in PERSONAL_FIELDS:
        return "(personal value not shown)"
    text = str(value)
    return repr(text if len(text) <= 40 else text[:40] + "…")


def is_total_row(values: Mapping[str, Any]) -> bool:
    """A spreadsheet's totals row (合计 …) without a parcel code, as exports write them."""
    return any(
        isinstance(v, str) and normalise(v).startswith(TOTAL_LABELS) for v in values.values()
    )
