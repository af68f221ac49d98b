import pytest
from sqlalchemy import text

from gis.domain.privacy import mask_id_number, mask_name, mask_name_sql, mask_phone, mask_record

NAMES = [None, "", "王", "李四", "张小明", "欧阳建国", "阿卜杜热合曼·买买提", "𠀀𠀁", "𠮷野家", " 张 ", "Li", "O'Brien",
         "王\n五", "* ", "a" * 40]


def test_names_keep_first_and_last_character():
    assert mask_name("张小明") == "张*明"
    assert mask_name("欧阳建国") == "欧**国"
    assert mask_name("李四") == "李*"
    assert mask_name("王") == "*"
    assert mask_name(None) is None


def test_id_numbers_and_phones_hide_the_identifying_digits():
    masked = mask_id_number("34188119900101123X")
    assert masked == "3418*************X" and len(masked) == 18
    assert mask_phone("13812345678") == "138****5678"


def test_mask_record_only_touches_personal_fields():
    rec = {"code": "XJ-1", "owner_name": "张小明", "owner_phone": "13812345678", "owner_id_number": None}
    assert mask_record(rec) == {"code": "XJ-1", "owner_name": "张*明", "owner_phone": "138****5678",
                                "owner_id_number": None}


@pytest.mark.parametrize("name", NAMES)
def test_sql_masks_names_as_python_does(engine, name):
    """Pages PostgreSQL writes whole (gis.analysis.blockers) mask in SQL: the same rule, the same results, astral
    characters and empty names included."""
    with engine.connect() as conn:
        masked = conn.execute(text(f"SELECT {mask_name_sql('CAST(:name AS text)')}"), {"name": name}).scalar_one()
    assert masked == mask_name(name)
