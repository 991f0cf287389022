"""Form parsing for the portal pages: every field bounded and validated, each error in Chinese
next to its field, and what the user typed kept for the re-rendered form.

A parser returns a :class:`FormResult`: ``values`` (the submitted strings, trimmed, to refill
the form), ``errors`` (field → message) and, when there are no errors, ``data`` (typed values
ready for the model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from service.validation import (
    FieldError,
    check_length,
    normalise_text,
    parse_date,
    parse_number,
    split_list,
)

TITLE_MAX = 100
DESCRIPTION_MAX = 5000
FIELD_MAX = 64
KEYWORDS_MAX = 20
KEYWORD_MAX = 30
BUDGET_MAX = 1_000_000.0  # 万元 (100 亿元)
DEADLINE_YEARS = 10
RAW_MAX = 20_000  # anything longer is cut before parsing (the length check then reports it)


@dataclass
class FormResult:
    """The outcome of parsing one form."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def _text(raw: str | None) -> str:
    return normalise_text((raw or "")[:RAW_MAX]).strip()


def parse_need_form(form: dict[str, str], *, today: date | None = None) -> FormResult:
    """A need form (标题, 需求描述, 技术领域, 关键词, 预算, 截止日期, 保密).

    Parameters
    ----------
    form : the submitted fields (missing ones count as empty).
    today : the date deadlines are checked against (default: today).
    """
    today = today or date.today()
    values = {
        k: _text(form.get(k))
        for k in ("title", "description", "field", "keywords", "budget", "deadline")
    }
    values["confidential"] = "1" if form.get("confidential") in ("1", "on", "true") else ""
    result = FormResult(values=values)
    errors, data = result.errors, result.data

    if not values["title"]:
        errors["title"] = "请填写需求标题"
    elif len(values["title"]) > TITLE_MAX:
        errors["title"] = f"标题不能超过 {TITLE_MAX} 字（当前 {len(values['title'])} 字）"
    else:
        data["title"] = values["title"]

    if len(values["description"]) < 10:
        errors["description"] = "请用至少 10 个字描述需求：要解决的问题、现状和期望的指标"
    elif len(values["description"]) > DESCRIPTION_MAX:
        errors["description"] = (
            f"需求描述不能超过 {DESCRIPTION_MAX} 字（当前 {len(values['description'])} 字）"
        )
    else:
        data["description"] = values["description"]

    try:
        data["field"] = check_length(values["field"], FIELD_MAX, "技术领域") or None
    except FieldError as exc:
        errors["field"] = str(exc)

    keywords = split_list(values["keywords"])
    if len(keywords) > KEYWORDS_MAX:
        errors["keywords"] = f"关键词最多 {KEYWORDS_MAX} 个（当前 {len(keywords)} 个）"
    elif any(len(k) > KEYWORD_MAX for k in keywords):
        errors["keywords"] = f"每个关键词不能超过 {KEYWORD_MAX} 字"
    else:
        data["keywords"] = keywords

    if values["budget"]:
        try:
            budget = parse_number(values["budget"], "预算", minimum=0.0)
            if budget > BUDGET_MAX:
                raise FieldError(f"预算不能超过 {BUDGET_MAX:,.0f} 万元")
            data["budget"] = budget
        except FieldError as exc:
            errors["budget"] = str(exc)
    else:
        data["budget"] = None

    if values["deadline"]:
        try:
            deadline = parse_date(values["deadline"], "截止日期")
            if deadline < today:
                raise FieldError("截止日期不能早于今天")
            if deadline.year > today.year + DEADLINE_YEARS:
                raise FieldError(f"截止日期不能晚于 {today.year + DEADLINE_YEARS} 年")
            data["deadline"] = deadline
        except FieldError as exc:
            errors["deadline"] = str(exc)
    else:
        data["deadline"] = None

    data["confidential"] = values["confidential"] == "1"
    if errors:
        result.data = {}
    return result


def need_values(need: Any) -> dict[str, str]:
    """A stored need as form values (for the edit form)."""
    return {
        "title": need.title or "",
        "description": need.description or "",
        "field": need.field or "",
        "keywords": "、".join(need.keywords or ()),
        "budget": f"{need.budget:g}" if need.budget is not None else "",
        "deadline": need.deadline.isoformat() if need.deadline else "",
        "confidential": "1" if need.confidential else "",
    }
