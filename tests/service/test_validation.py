"""统一社会信用代码 checksum, normalisation, region derivation and cell parsers."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

import pytest

from service.enums import CAPABILITY_KIND_ALIASES, ORG_KIND_ALIASES, parse_enum
from service.validation import (
    FieldError,
    credit_code_check_char,
    in_home_region,
    is_valid_credit_code,
    normalise_code,
    normalise_text,
    parse_bool,
    parse_date,
    parse_datetime,
    parse_int,
    parse_number,
    province_from_credit_code,
    split_list,
    validate_credit_code,
)

VALID_CODES = ("91350100M000100Y43", "91110000600037341L")


@pytest.mark.parametrize("code", VALID_CODES)
def test_known_valid_credit_codes(code: str) -> None:
    assert validate_credit_code(code) == code
    assert credit_code_check_char(code[:17]) == code[17]


def test_credit_code_normalisation_accepts_fullwidth_lowercase_and_spaces() -> None:
    assert validate_credit_code(" ９１３５０１００m000 100-Y43 ") == "91350100M000100Y43"


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("91350100M000100Y44", "校验位错误"),  # wrong check character
        ("91350100M000100Y4", "18位"),  # too short
        ("91350100M000100Y433", "18位"),  # too long
        ("91350100M0001I0Y43", "非法字符"),  # I is not in the charset
        ("91350100M000010Y43", "校验位"),  # transposed digits
    ],
)
def test_corrupted_credit_codes_are_rejected(code: str, fragment: str) -> None:
    with pytest.raises(FieldError, match=fragment):
        validate_credit_code(code)
    assert not is_valid_credit_code(code)


def test_every_single_character_corruption_is_detected() -> None:
    code = VALID_CODES[0]
    charset = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    for i in range(18):
        for c in charset:
            if c != code[i]:
                assert not is_valid_credit_code(code[:i] + c + code[i + 1 :])


def test_generated_codes_validate() -> None:
    rng = random.Random(3)
    for _ in range(200):
        body = "91450100" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(9))
        assert is_valid_credit_code(body + credit_code_check_char(body))


def test_province_from_credit_code() -> None:
    assert province_from_credit_code("914502001874633118") == "广西壮族自治区"
    assert province_from_credit_code(VALID_CODES[0]) == "福建省"


@pytest.mark.parametrize(
    ("province", "home", "expected"),
    [
        ("广西", "广西", True),
        ("广西壮族自治区", "广西", True),
        ("广西", "广西壮族自治区", True),
        ("  广西壮族自治区 ", "广西", True),
        ("广东省", "广西", False),
        (None, "广西", False),
        ("", "广西", False),
        ("浙江", "浙江省", True),
    ],
)
def test_in_home_region(province: str | None, home: str, expected: bool) -> None:
    assert in_home_region(province, home) is expected


def test_text_normalisation_keeps_chinese_punctuation() -> None:
    text = normalise_text("　ＡＢＣ１２３，需要：提高（产能）。\r\n第二行 ")
    assert text == "ABC123，需要：提高（产能）。\n第二行"


def test_code_normalisation_is_full_nfkc() -> None:
    assert normalise_code("ＮＥＥＤ－００１") == "NEED-001"
    assert normalise_code(12.0) == "12"


def test_split_list_separators() -> None:
    assert split_list("制糖，机械、汽车;新能源；农业|林业") == [
        "制糖",
        "机械",
        "汽车",
        "新能源",
        "农业",
        "林业",
    ]
    assert split_list("甘蔗 制糖  甘蔗") == ["甘蔗", "制糖"]
    assert split_list("deep learning") == ["deep learning"]
    assert split_list(["a", " b ", "a"]) == ["a", "b"]
    assert split_list(None) == [] and split_list("  ") == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("是", True),
        ("否", False),
        ("TRUE", True),
        ("false", False),
        ("1", True),
        ("0", False),
        ("", False),
        (1, True),
    ],
)
def test_parse_bool(raw: object, expected: bool) -> None:
    assert parse_bool(raw) is expected


def test_parse_bool_rejects_other_text() -> None:
    with pytest.raises(FieldError, match="是/否"):
        parse_bool("也许")


def test_parse_number_units_and_errors() -> None:
    assert parse_number("50万元") == 50.0
    assert parse_number("1,200") == 1200.0
    assert parse_number("５０．５") == 50.5
    assert parse_number(-3.5, minimum=None) == -3.5
    with pytest.raises(FieldError, match="不能小于"):
        parse_number("-3", "预算")
    with pytest.raises(FieldError, match="不是数字"):
        parse_number("五十", "预算")
    with pytest.raises(FieldError, match="有限"):
        parse_number("nan")


def test_parse_int_and_bounds() -> None:
    assert parse_int("TRL6", "技术成熟度", minimum=1, maximum=9) == 6
    assert parse_int("7级", "技术成熟度", minimum=1, maximum=9) == 7
    assert parse_int(2021.0, "年份") == 2021
    with pytest.raises(FieldError, match="超出范围"):
        parse_int("10", "技术成熟度", minimum=1, maximum=9)
    with pytest.raises(FieldError, match="不是整数"):
        parse_int("6.5", "技术成熟度")


@pytest.mark.parametrize(
    "raw", ["2026-03-01", "2026/3/1", "2026.3.1", "2026年3月1日", "20260301", "２０２６-０３-０１"]
)
def test_parse_date_formats(raw: str) -> None:
    assert parse_date(raw) == date(2026, 3, 1)


@pytest.mark.parametrize("raw", ["2026-13-01", "2026-02-30", "下周一", "03/01/2026"])
def test_parse_date_rejects(raw: str) -> None:
    with pytest.raises(FieldError, match="日期"):
        parse_date(raw)


def test_parse_datetime_converts_to_utc() -> None:
    assert parse_datetime("2026-01-05T10:00:00+08:00") == datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
    assert parse_datetime("2026-01-05") == datetime(2026, 1, 5, tzinfo=UTC)


def test_enum_aliases() -> None:
    assert parse_enum("高校", ORG_KIND_ALIASES, "单位类型") == "university"
    assert parse_enum("研究所", ORG_KIND_ALIASES, "单位类型") == "institute"
    assert parse_enum("科技公司", ORG_KIND_ALIASES, "单位类型") == "company"
    assert parse_enum("Enterprise", ORG_KIND_ALIASES, "单位类型") == "enterprise"
    assert parse_enum("实验室/平台", CAPABILITY_KIND_ALIASES, "成果类型") == "lab"
    with pytest.raises(FieldError, match="单位类型取值无法识别"):
        parse_enum("政府", ORG_KIND_ALIASES, "单位类型")
