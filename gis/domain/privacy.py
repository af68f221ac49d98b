"""Masking personal data (owner names, ID numbers, phones) for callers who may not see it."""

from __future__ import annotations

from gis.domain.schema import personal_columns

PERSONAL_FIELDS = personal_columns()


def mask_name(name: str | None) -> str | None:
    """张小明 → 张*明, 李四 → 李*, a one-character name → *."""
    if not name:
        return name
    if len(name) == 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_name_sql(expression: str) -> str:
    """``mask_name`` as a SQL expression over ``expression`` (text), for answers PostgreSQL writes whole; both count
    characters (code points), and ``tests/test_privacy.py`` holds them to the same results."""
    n = f"char_length({expression})"
    return (f"CASE WHEN {n} IS NULL OR {n} = 0 THEN {expression} WHEN {n} = 1 THEN '*' WHEN {n} = 2 THEN "
            f"left({expression}, 1) || '*' ELSE left({expression}, 1) || repeat('*', {n} - 2) || "
            f"right({expression}, 1) END")


def mask_id_number(value: str | None) -> str | None:
    """Keep the region prefix and the check digit only: 3418**********123X → 3418************X."""
    if not value:
        return value
    return value[:4] + "*" * max(len(value) - 5, 0) + value[-1:]


def mask_phone(value: str | None) -> str | None:
    """138****1234."""
    if not value:
        return value
    return value[:3] + "*" * max(len(value) - 7, 0) + value[-4:]


def mask_record(record: dict) -> dict:
    """A copy of ``record`` with each personal field present masked."""
    out = dict(record)
    if "owner_name" in out:
        out["owner_name"] = mask_name(out["owner_name"])
    if "owner_id_number" in out:
        out["owner_id_number"] = mask_id_number(out["owner_id_number"])
    if "owner_phone" in out:
        out["owner_phone"] = mask_phone(out["owner_phone"])
    return out
