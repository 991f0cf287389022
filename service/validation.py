"""Field-level validation and normalisation for imported records.

This module owns the rules that do not need the database:

* 统一社会信用代码 (unified social credit code) structure and check character per
  GB 32100-2015, plus :func:`credit_code_check_char` so generators can produce valid codes;
* region derivation: the province of a record (or, when missing, the province encoded in the
  credit code's administrative-division digits) and whether it lies in the home region;
* text normalisation: full-width ASCII letters/digits become half-width everywhere, codes and
  numbers go through full NFKC, but Chinese punctuation in free text (，。：；“”) is kept;
* parsers for the value formats found in real spreadsheets (是/否, 2026年3月1日, 50万元,
  TRL6, lists separated by ，,、;；| or spaces); the Chinese aliases of enumerations are in
  :mod:`service.enums`.

Every parser raises :class:`FieldError` with a Chinese-friendly message; the importer attaches
file, row and column.
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import UTC, date, datetime, timedelta
from typing import Final


class FieldError(ValueError):
    """A single value is invalid; ``str(exc)`` is the user-facing reason."""


# --------------------------------------------------------------------------- credit codes

#: The 31 characters of GB 32100-2015 (no I, O, S, V, Z), in value order 0..30.
CREDIT_CODE_CHARSET: Final[str] = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_VALUE: Final[dict[str, int]] = {c: i for i, c in enumerate(CREDIT_CODE_CHARSET)}
#: Weights of positions 1–17 (3^(i) mod 31).
CREDIT_CODE_WEIGHTS: Final[tuple[int, ...]] = (
    1,
    3,
    9,
    27,
    19,
    26,
    16,
    17,
    20,
    29,
    25,
    13,
    8,
    24,
    10,
    30,
    28,
)

#: Province-level administrative division codes (first two digits of GB/T 2260 codes).
PROVINCE_CODES: Final[dict[str, str]] = {
    "11": "北京市",
    "12": "天津市",
    "13": "河北省",
    "14": "山西省",
    "15": "内蒙古自治区",
    "21": "辽宁省",
    "22": "吉林省",
    "23": "黑龙江省",
    "31": "上海市",
    "32": "江苏省",
    "33": "浙江省",
    "34": "安徽省",
    "35": "福建省",
    "36": "江西省",
    "37": "山东省",
    "41": "河南省",
    "42": "湖北省",
    "43": "湖南省",
    "44": "广东省",
    "45": "广西壮族自治区",
    "46": "海南省",
    "50": "重庆市",
    "51": "四川省",
    "52": "贵州省",
    "53": "云南省",
    "54": "西藏自治区",
    "61": "陕西省",
    "62": "甘肃省",
    "63": "青海省",
    "64": "宁夏回族自治区",
    "65": "新疆维吾尔自治区",
    "71": "台湾省",
    "81": "香港特别行政区",
    "82": "澳门特别行政区",
}


def credit_code_check_char(first17: str) -> str:
    """The GB 32100-2015 check character for the first 17 characters of a code.

    Parameters
    ----------
    first17 : str
        Seventeen characters from :data:`CREDIT_CODE_CHARSET`.

    Returns
    -------
    str
        The 18th character.

    Raises
    ------
    FieldError
        If ``first17`` is not 17 characters of the charset.
    """
    if len(first17) != 17 or any(c not in _CREDIT_VALUE for c in first17):
        raise FieldError("统一社会信用代码前17位必须由数字和大写字母（不含I、O、S、V、Z）组成")
    total = sum(_CREDIT_VALUE[c] * w for c, w in zip(first17, CREDIT_CODE_WEIGHTS, strict=True))
    return CREDIT_CODE_CHARSET[(31 - total % 31) % 31]


def normalise_credit_code(raw: str) -> str:
    """Upper-case, half-width, without spaces or hyphens (``９１３５ 0100-m...`` → ``91350100M...``)."""
    text = unicodedata.normalize("NFKC", raw).upper()
    return re.sub(r"[\s\-_]", "", text)


def validate_credit_code(raw: str) -> str:
    """Normalise and check a 统一社会信用代码.

    Parameters
    ----------
    raw : str
        The code as typed (full-width characters, lower case and spaces are tolerated).

    Returns
    -------
    str
        The normalised 18-character code.

    Raises
    ------
    FieldError
        On wrong length, characters outside the charset, or a wrong check character.
    """
    code = normalise_credit_code(raw)
    if len(code) != 18:
        raise FieldError(f"统一社会信用代码应为18位，实际为{len(code)}位：{code}")
    bad = sorted({c for c in code if c not in _CREDIT_VALUE})
    if bad:
        raise FieldError(
            f"统一社会信用代码含非法字符 {''.join(bad)}（不得含 I、O、S、V、Z 或符号）：{code}"
        )
    expected = credit_code_check_char(code[:17])
    if code[17] != expected:
        raise FieldError(f"统一社会信用代码校验位错误：{code}（第18位应为 {expected}）")
    return code


def is_valid_credit_code(raw: str) -> bool:
    """True when :func:`validate_credit_code` accepts ``raw``."""
    try:
        validate_credit_code(raw)
    except FieldError:
        return False
    return True


#: Prefecture-level cities of the default home region, for rows with a city but no province.
CITY_PROVINCE: Final[dict[str, str]] = dict.fromkeys(
    "南宁 柳州 桂林 梧州 北海 防城港 钦州 贵港 玉林 百色 贺州 河池 来宾 崇左".split(),
    "广西壮族自治区",
)


def province_from_city(city: str | None) -> str | None:
    """The province of a known city (``柳州`` or ``柳州市`` → ``广西壮族自治区``), else None."""
    if not city:
        return None
    name = normalise_text(city)
    return CITY_PROVINCE.get(name[:-1] if name.endswith("市") else name)


def province_from_credit_code(code: str) -> str | None:
    """The province encoded in digits 3–4 of a (valid) credit code, if recognisable."""
    return PROVINCE_CODES.get(code[2:4]) if len(code) == 18 else None


# --------------------------------------------------------------------------- regions


def in_home_region(province: str | None, home_region: str) -> bool:
    """Whether ``province`` lies in ``home_region``.

    Matching is by containment after normalisation, in both directions of the common
    short/long forms: home region ``广西`` matches ``广西`` and ``广西壮族自治区``, and home
    region ``广西壮族自治区`` matches ``广西``.
    """
    if not province:
        return False
    prov = normalise_text(province)
    home = normalise_text(home_region)
    if not prov or not home:
        return False
    return home in prov or _short_region(home) in prov or _short_region(prov) == home


_REGION_SUFFIX = re.compile(r"(壮族|回族|维吾尔)?(自治区|特别行政区|省|市)$")


def _short_region(name: str) -> str:
    """``广西壮族自治区`` → ``广西``, ``浙江省`` → ``浙江``; other names unchanged."""
    short = _REGION_SUFFIX.sub("", name)
    return short or name


# --------------------------------------------------------------------------- text

# Full-width ASCII letters and digits (and the ideographic space) map to half-width in any
# text; punctuation such as ，。：；（） is left alone so Chinese prose keeps its typography.
_FULLWIDTH_ALNUM: Final[dict[int, int | str]] = {
    **{cp: cp - 0xFEE0 for cp in range(0xFF10, 0xFF1A)},  # ０-９
    **{cp: cp - 0xFEE0 for cp in range(0xFF21, 0xFF3B)},  # Ａ-Ｚ
    **{cp: cp - 0xFEE0 for cp in range(0xFF41, 0xFF5B)},  # ａ-ｚ
    0x3000: " ",
}
_HAS_FULLWIDTH = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a\u3000]")
#: Characters no record should hold: C0 controls except tab and line breaks, DEL, C1 controls,
#: zero-width space and BOM, lone surrogates (unencodable as UTF-8), the noncharacters
#: U+FFFE/U+FFFF, and the bidirectional overrides that can disguise text.
_CONTROL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u202a-\u202e\u2066-\u2069"
    "\ufeff\ufffe\uffff\ud800-\udfff]"
)


_FORMULA_START: Final[str] = "=+-@"


def remove_control_chars(text: str) -> str:
    """``text`` without the control characters :func:`normalise_text` removes (nothing else).

    For values that must otherwise stay as they are (e.g. legacy rows on export).
    """
    return _CONTROL.sub("", text) if _CONTROL.search(text) else text


def normalise_text(value: object) -> str:
    """Normalise free text: strip, half-width letters/digits, no control characters.

    Line breaks inside descriptions are kept (as ``\\n``); Chinese punctuation is kept.
    Leading whitespace is kept only before ``=``, ``+``, ``-`` or ``@`` (see the formula guard
    in :mod:`service.formats`). This is the service's one text cleaner: the importer and every
    write of a content record (:meth:`service.models.Hashed.clean_text`) go through it.
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if _HAS_FULLWIDTH.search(text):  # translate() is slow; most cells need nothing
        text = text.translate(_FULLWIDTH_ALNUM)
    if "\r" in text or "\u2028" in text or "\u2029" in text or "\x85" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        text = text.replace("\u2028", "\n").replace("\u2029", "\n").replace("\x85", "\n")
    text = remove_control_chars(text).rstrip()
    stripped = text.lstrip()
    # Leading whitespace before = + - @ is kept: it is what keeps such text inert in a
    # spreadsheet, and an import must not turn it into formula-looking text.
    return text if stripped[:1] in _FORMULA_START and stripped else stripped


def normalise_code(value: object) -> str:
    """Normalise an identifier or number: full NFKC (full-width → half-width), stripped."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 12.0 from a spreadsheet cell is the id "12"
    text = unicodedata.normalize("NFKC", remove_control_chars(str(value)))
    return text.strip()


def check_length(text: str, limit: int, what: str) -> str:
    """Raise :class:`FieldError` when ``text`` is longer than ``limit`` characters."""
    if len(text) > limit:
        raise FieldError(f"{what}过长：{len(text)}字，上限{limit}字")
    return text


_LIST_SEPARATORS = re.compile(r"[，,、;；|｜\n]+")
_CJK = re.compile(r"[\u3400-\u9fff]")


def split_list(value: object) -> list[str]:
    """Split a list cell on ，,、;；| (or a JSON list) into distinct, stripped items.

    Whitespace separates items only when no other separator is present and the value contains
    Chinese characters (``甘蔗 制糖`` → two items) so that English phrases such as
    ``deep learning`` stay whole.
    """
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        items = [normalise_text(v) for v in value]
    else:
        text = normalise_text(value)
        if not text:
            return []
        if _LIST_SEPARATORS.search(text):
            items = _LIST_SEPARATORS.split(text)
        elif _CJK.search(text):
            items = text.split()
        else:
            items = [text]
    out: list[str] = []
    for item in items:
        item = item.strip()
        if item and item not in out:
            out.append(item)
    return out


# --------------------------------------------------------------------------- scalar parsers

_TRUE = {"是", "true", "t", "yes", "y", "1", "保密", "对", "√"}
_FALSE = {"否", "false", "f", "no", "n", "0", "不保密", "公开", "", "×"}


def parse_bool(value: object) -> bool:
    """是/否, true/false, yes/no, 1/0 (any case); empty means false."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = normalise_code(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise FieldError(f"无法识别的是/否取值：{text}（可填 是/否、true/false、1/0）")


_NUMBER_UNITS = re.compile(r"(万元|万|元|rmb|cny|¥|￥)$", re.IGNORECASE)


def parse_number(value: object, what: str = "数值", *, minimum: float | None = 0.0) -> float:
    """Parse ``50``, ``50.5``, ``1,200``, ``50万元``, ``５０`` into a float.

    Raises
    ------
    FieldError
        On unparsable text, NaN/inf, or a value below ``minimum``.
    """
    if isinstance(value, bool):
        raise FieldError(f"{what}不是数字：{value}")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        text = normalise_code(value).replace(",", "").replace(" ", "")
        text = _NUMBER_UNITS.sub("", text)
        try:
            number = float(text)
        except ValueError:
            raise FieldError(f"{what}不是数字：{normalise_code(value)}") from None
    if not math.isfinite(number):
        raise FieldError(f"{what}不是有限数值：{value}")
    if minimum is not None and number < minimum:
        raise FieldError(f"{what}不能小于{minimum:g}：{number:g}")
    return number


def parse_int(
    value: object, what: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Parse an integer (``6``, ``6.0``, ``TRL6``, ``6级``, ``2021年``) within bounds."""
    if isinstance(value, bool):
        raise FieldError(f"{what}不是整数：{value}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        text = normalise_code(value).upper()
        text = re.sub(r"^(TRL)\s*", "", text)
        text = re.sub(r"(级|年)$", "", text)
        if not re.fullmatch(r"[+-]?\d+(\.0+)?", text):
            raise FieldError(f"{what}不是整数：{normalise_code(value)}")
        number = int(float(text))
    if minimum is not None and number < minimum or maximum is not None and number > maximum:
        raise FieldError(f"{what}超出范围 {minimum}–{maximum}：{number}")
    return number


_DATE_PATTERNS: Final[tuple[re.Pattern[str], ...]] = (
    re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
)
_MONTH_PATTERN: Final[re.Pattern[str]] = re.compile(
    r"^(\d{4})(?:[-/.]|年)(\d{1,2})(?:月(?:底|末|前|之前|以前)?)?$"
)
_YEAR_PATTERN: Final[re.Pattern[str]] = re.compile(r"^(\d{4})年(?:底|末|前|之前|以前|内)?$")


def parse_date(value: object, what: str = "日期") -> date:
    """Parse 2026-03-01, 2026/3/1, 2026.3.1, 2026年3月1日, 20260301 or a spreadsheet date.

    A month (2026-12, 2026年12月, 2026年12月底) or a year (2026年, 2026年底) means its last day.
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = normalise_code(value)
    text = re.sub(r"[T ]00:00(:00)?$", "", text)
    for pattern in _DATE_PATTERNS:
        m = pattern.match(text)
        if m:
            try:
                return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                break
    else:
        # A month or a year (完成时限 2026年12月, 2026年底): the last day of that period.
        if m := _MONTH_PATTERN.match(text):
            year, month = int(m.group(1)), int(m.group(2))
            if 1 <= month <= 12:
                return date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
        elif m := _YEAR_PATTERN.match(text):
            return date(int(m.group(1)), 12, 31)
    raise FieldError(f"{what}格式无法识别：{text}（应为 2026-03-01 或 2026年3月1日）")


def parse_datetime(value: object, what: str = "时间") -> datetime:
    """Parse an ISO date-time (naive values are taken as UTC) or a date (midnight UTC)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = normalise_code(value).replace("/", "-")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return datetime.combine(parse_date(value, what), datetime.min.time(), tzinfo=UTC)
    # Stored as UTC: SQLite keeps no offset, so a +08:00 time must be converted first.
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


__all__ = [
    "CREDIT_CODE_CHARSET",
    "FieldError",
    "PROVINCE_CODES",
    "check_length",
    "credit_code_check_char",
    "in_home_region",
    "is_valid_credit_code",
    "normalise_code",
    "normalise_credit_code",
    "normalise_text",
    "parse_bool",
    "parse_date",
    "parse_datetime",
    "parse_int",
    "parse_number",
    "province_from_city",
    "province_from_credit_code",
    "remove_control_chars",
    "split_list",
    "validate_credit_code",
]
