"""Form-field parsing with Chinese messages, shared by the portal pages and the API routes
that accept the same records.

Each ``parse_*_field`` reads one raw value (a form string, or a JSON value), normalises it with
:func:`service.validation.normalise_text`, checks its bounds and either returns the value or
records a Chinese message under the field's name in a :class:`FormErrors`. A page shows each
message next to its field and re-renders what the user typed; the API answers 422 with the
same messages in ``errors``.
"""

from __future__ import annotations

import math
from datetime import date

from service.errors import InvalidRequest
from service.validation import FieldError, normalise_text, parse_date


class FormErrors(InvalidRequest):
    """Field name → Chinese message; raised (once) when any field was invalid."""

    code = "invalid_form"

    def __init__(self) -> None:
        super().__init__("表单填写有误")
        self.fields: dict[str, str] = {}

    def add(self, name: str, message: str) -> None:
        """Record the first problem of field ``name``."""
        self.fields.setdefault(name, message)

    def missing(self, name: str, label: str, *, required: bool, verb: str = "填写") -> None:
        """An empty field: "请填写<label>" when it is required, nothing when optional."""
        if required:
            self.add(name, f"请{verb}{label}")

    def __bool__(self) -> bool:
        return bool(self.fields)

    def raise_if_any(self) -> None:
        if self.fields:
            self.detail = "表单填写有误：" + "；".join(self.fields.values())
            self.args = (self.detail,)
            raise self


def parse_text_field(
    errors: FormErrors,
    name: str,
    raw: object,
    label: str,
    *,
    max_len: int,
    min_len: int = 1,
    required: bool = True,
) -> str | None:
    """Normalised text of 1..``max_len`` characters (None when optional and empty)."""
    text = normalise_text(raw)
    if not text:
        errors.missing(name, label, required=required)
        return None
    if len(text) < min_len:
        errors.add(name, f"{label}至少 {min_len} 个字")
    elif len(text) > max_len:
        errors.add(name, f"{label}最多 {max_len} 个字(现有 {len(text)} 个)")
    return text


def parse_number_field(
    errors: FormErrors,
    name: str,
    raw: object,
    label: str,
    *,
    minimum: float,
    maximum: float,
    required: bool = True,
) -> float | None:
    """A finite number in [minimum, maximum] (万元 amounts: "50", "50.5")."""
    if isinstance(raw, bool):
        errors.add(name, f"{label}必须是数字")
        return None
    if isinstance(raw, int | float):
        value = float(raw)
    else:
        text = normalise_text(raw).replace(",", "").replace("，", "")
        if not text:
            errors.missing(name, label, required=required)
            return None
        try:
            value = float(text)
        except ValueError:
            errors.add(name, f"{label}必须是数字")
            return None
    if not math.isfinite(value):
        errors.add(name, f"{label}必须是数字")
        return None
    if value < minimum:
        errors.add(name, f"{label}不能小于 {minimum:g}")
    elif value > maximum:
        errors.add(name, f"{label}不能大于 {maximum:g}")
    return value


def parse_int_field(
    errors: FormErrors,
    name: str,
    raw: object,
    label: str,
    *,
    minimum: int,
    maximum: int,
    required: bool = True,
) -> int | None:
    """An integer in [minimum, maximum]."""
    if isinstance(raw, bool):
        errors.add(name, f"{label}必须是整数")
        return None
    if isinstance(raw, int):
        value = raw
    else:
        text = normalise_text(raw)
        if not text:
            errors.missing(name, label, required=required)
            return None
        try:
            value = int(text)
        except ValueError:
            errors.add(name, f"{label}必须是整数")
            return None
    if not minimum <= value <= maximum:
        errors.add(name, f"{label}应在 {minimum}–{maximum} 之间")
    return value


def parse_date_field(
    errors: FormErrors,
    name: str,
    raw: object,
    label: str,
    *,
    earliest: date | None = None,
    latest: date | None = None,
    required: bool = True,
) -> date | None:
    """A date (2026-03-01, 2026年3月1日, ...) within [earliest, latest]."""
    if isinstance(raw, date):
        value = raw
    else:
        text = normalise_text(raw)
        if not text:
            errors.missing(name, label, required=required)
            return None
        try:
            value = parse_date(text, label)
        except FieldError:
            errors.add(name, f"{label}格式应为 年-月-日，例如 2026-03-01")
            return None
    if earliest is not None and value < earliest:
        errors.add(name, f"{label}不能早于 {earliest.isoformat()}")
    elif latest is not None and value > latest:
        errors.add(name, f"{label}不能晚于 {latest.isoformat()}")
    return value


def parse_choice_field(
    errors: FormErrors,
    name: str,
    raw: object,
    label: str,
    choices: dict[str, str],
    *,
    required: bool = True,
) -> str | None:
    """One of ``choices`` (value → Chinese label)."""
    text = normalise_text(raw)
    if not text:
        errors.missing(name, label, required=required, verb="选择")
        return None
    if text not in choices:
        errors.add(name, f"{label}只能是：" + "、".join(choices.values()))
        return None
    return text


def parse_keywords_field(
    errors: FormErrors, name: str, raw: object, label: str, *, max_items: int = 20
) -> list[str]:
    """Keywords separated by 、，, ; or spaces: at most ``max_items`` of at most 50 characters."""
    from service.validation import split_list

    items = raw if isinstance(raw, list) else split_list(normalise_text(raw))
    out: list[str] = []
    for item in items:
        text = normalise_text(item)
        if text and text not in out:
            out.append(text)
    if len(out) > max_items:
        errors.add(name, f"{label}最多 {max_items} 个")
    elif any(len(x) > 50 for x in out):
        errors.add(name, f"每个{label}最多 50 个字")
    return out
