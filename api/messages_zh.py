"""The Chinese wording of the API's error answers (``detail_zh``), for clients that ask for Chinese.

The library's messages are English (``detail``, the API's contract, read by scripts and in logs). A client that
sends ``Accept-Language: zh`` (``zh``, ``zh-CN``, ``zh-Hans;q=0.9`` ...) also gets ``detail_zh``: the message's own
Chinese wording where it is one of the messages people meet on the pages (a drawn geometry, a search, a format, a
parameter, a missing record), else the kind of error in Chinese with the field and the English message after it.
``api.errors`` adds it to every error it answers; the pages show it (``gis/maps/workbench.js``, ``admin.js``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

# The status's own sentence: said first when the message has no wording of its own.
STATUS_ZH = {
    400: "请求有误",
    401: "未登录或登录已失效，请先登录",
    403: "您的角色无权进行此操作",
    404: "未找到",
    405: "不支持此请求方法",
    409: "与已有记录冲突",
    412: "记录已被他人修改，请刷新后重试",
    413: "内容过大",
    415: "不支持此文件类型",
    422: "输入有误",
    428: "修改须注明所依据的版本（version）",
    429: "请求过于频繁，请稍后再试",
    500: "服务器内部错误",
    503: "服务繁忙或数据库暂不可用，请稍后重试",
}

# GEOS's reasons for an invalid geometry.
_REASONS_ZH = (
    (re.compile(r"^Ring Self-intersection", re.I), "边界自相交"),
    (re.compile(r"^Self-intersection", re.I), "自相交"),
    (re.compile(r"^Too few points", re.I), "点数太少"),
    (re.compile(r"^Hole lies outside shell", re.I), "内环在外环之外"),
    (re.compile(r"^Nested shells", re.I), "外环嵌套"),
    (re.compile(r"^Interior is disconnected", re.I), "内部不连通"),
    (re.compile(r"^Duplicate Rings?", re.I), "环重复"),
)


def _reason(text: str) -> str:
    for pattern, zh in _REASONS_ZH:
        if pattern.search(text):
            return zh
    return re.sub(r"\[.*\]$", "", text).strip()


Wording = Callable[[re.Match[str]], str]
# The messages people meet on the pages, by their English wording (searched, first match wins).
MESSAGES_ZH: tuple[tuple[re.Pattern[str], Wording], ...] = tuple((re.compile(p), f) for p, f in (
    (r"^invalid geometry: (.*)$", lambda m: f"图形无效：{_reason(m[1])}"),
    (r"needs a corridor width", lambda m: "线须填写宽度（米）"),
    (r"corridor width must be a positive", lambda m: "宽度须为大于 0 的米数"),
    (r"corridor width of .* is implausible", lambda m: "宽度过大（最多 2000 米）"),
    (r"applies to lines only", lambda m: "面不需要宽度：请清空宽度"),
    (r"lies outside the area covered by parcels", lambda m: "图形不在地块覆盖的范围内"),
    (r"the geometry is empty", lambda m: "图形为空：请先在地图上画线或画面"),
    (r"distance bands are measured from a centre line", lambda m: "距离带须以中线计算：请画线，不是面"),
    (r"band edges must start at 0", lambda m: "距离带须从 0 开始并逐个增大"),
    (r"at least two band edges", lambda m: "距离带至少需要两个数"),
    (r"outermost band may reach at most", lambda m: "最外一带最远 5000 米"),
    (r"give a parcel code, a district or an owner", lambda m: "请填写编号、片区或权利人"),
    (r"searching by owner", lambda m: "您的角色不能按权利人查询"),
    (r"^unknown district '?([^';]*)'?", lambda m: f"没有这个片区：{m[1]}"),
    (r"^unknown format '([^']*)'; formats: (.*)$", lambda m: f"不支持的格式 {m[1]}；可用格式：{m[2]}"),
    (r"^unknown query parameter '([^']*)'; this route takes (.*)$",
     lambda m: f"不认识的查询参数 {m[1]}；此接口可用的参数：{m[2]}"),
    (r"^unknown stage '([^']*)'; stages are (.*)$", lambda m: f"没有这个阶段：{m[1]}；阶段有：{m[2]}"),
    (r"^no project (?:with id )?'?([^']*)'?$", lambda m: f"没有这个项目：{m[1]}"),
    (r"^no parcel (?:with id )?(\S+)$", lambda m: f"没有这个地块：{m[1]}"),
    (r"^no district (?:with code )?'?([^']*)'?$", lambda m: f"没有这个片区：{m[1]}"),
    (r"^no user '?([^']*)'?$", lambda m: f"没有这个用户：{m[1]}"),
    (r"^no collection '([^']*)'", lambda m: f"没有这个图层集合：{m[1]}"),
    (r"^this needs the role (.*); you are (\S+)$", lambda m: f"需要以下角色之一：{m[1]}；您的角色是 {m[2]}"),
    (r"this parcel lies outside the districts this user may edit", lambda m: "该地块不在您可编辑的片区内"),
    (r"^(\S+) is outside its bounds$", lambda m: f"{m[1]} 超出允许范围"),
    (r"^(\S+) must be at least (\S+) and at most (\S+)", lambda m: f"{m[1]} 须在 {m[2]} 到 {m[3]} 之间"),
    (r"is not a date \(YYYY-MM-DD\)", lambda m: "日期格式须为 YYYY-MM-DD"),
    (r"^(?:sign in at /login|use 'Authorization|the token is not valid)", lambda m: STATUS_ZH[401]),
))

# FastAPI's (pydantic's) validation errors, by type.
_VALIDATION_ZH = {
    "missing": "缺少此项",
    "extra_forbidden": "不认识此项",
    "int_parsing": "须为整数",
    "int_type": "须为整数",
    "float_parsing": "须为数字",
    "float_type": "须为数字",
    "bool_parsing": "须为 true 或 false",
    "date_from_datetime_parsing": "须为日期（YYYY-MM-DD）",
    "date_parsing": "须为日期（YYYY-MM-DD）",
    "string_pattern_mismatch": "取值不在允许的范围内",
    "literal_error": "取值不在允许的范围内",
    "enum": "取值不在允许的范围内",
    "greater_than": "数值太小",
    "greater_than_equal": "数值太小",
    "less_than": "数值太大",
    "less_than_equal": "数值太大",
    "string_too_long": "文字太长",
    "string_too_short": "文字太短",
    "too_long": "项数太多",
    "too_short": "项数太少",
    "json_invalid": "不是有效的 JSON",
    "model_attributes_type": "须为 JSON 对象",
    "dict_type": "须为 JSON 对象",
    "list_type": "须为列表",
    "string_type": "须为文字",
}
_WHERE_ZH = {"query": "查询参数", "body": "请求内容", "path": "路径参数", "header": "请求头", "cookie": "Cookie"}


def wants_chinese(accept_language: str | None) -> bool:
    """True when ``Accept-Language`` names Chinese (``zh`` or a ``zh-…`` tag) with a weight above 0."""
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        if tag.strip().lower().split("-")[0] != "zh":
            continue
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if weight > 0:
            return True
    return False


_CHOICES = re.compile(r"pattern '\^\(([^)]*)\)\$'")


def _allowed(message: str) -> str:
    """The values a pattern or literal error allows, from pydantic's English message: 'json', 'csv' ..."""
    found = _CHOICES.search(message)
    values = found[1].split("|") if found else re.findall(r"'([^']*)'", message)
    return "、".join(values)


def _validation_zh(errors: list[dict[str, Any]]) -> str:
    parts = []
    for e in errors:
        loc = [str(x) for x in e.get("loc", ())]
        place = _WHERE_ZH.get(loc[0], loc[0]) + " " + ".".join(loc[1:]) if loc else ""
        what = _VALIDATION_ZH.get(str(e.get("type", "")), str(e.get("msg", "")))
        if e.get("type") in ("string_pattern_mismatch", "literal_error", "enum") and _allowed(str(e.get("msg"))):
            what += f"，可用：{_allowed(str(e.get('msg')))}"
        parts.append(f"{place.strip()}：{what}" if place.strip() else what)
    return f"{STATUS_ZH[422]}：" + "；".join(parts)


def detail_zh(detail: Any, status: int, where: str | None = None) -> str:
    """The Chinese for an error answer of ``status`` whose ``detail`` is an English message (or FastAPI's list of
    validation errors); ``where`` is the field the answer names."""
    if isinstance(detail, list):
        return _validation_zh(detail)
    text = str(detail)
    for pattern, wording in MESSAGES_ZH:
        found = pattern.search(text)
        if found:
            return wording(found)
    kind = STATUS_ZH.get(status) or STATUS_ZH[500 if status >= 500 else 400]
    place = f"（{where}）" if where else ""
    return f"{kind}{place}：{text}" if text else kind
