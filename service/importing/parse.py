"""Row parsing: raw cells of one table → clean values for the model, references resolved.

:class:`Directory` holds the external ids of the store (and of rows validated earlier in the
same run) that references are resolved against; :class:`RowParser` applies the value rules of
:mod:`service.validation` column by column and collects every problem of a row.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from service.enums import (
    BOUNTY_KIND_ALIASES,
    BOUNTY_STATUS_ALIASES,
    CAPABILITY_KIND_ALIASES,
    CAPABILITY_STATUS_ALIASES,
    NEED_STATUS_ALIASES,
    ORG_KIND_ALIASES,
    ORG_STATUS_ALIASES,
    SCALE_ALIASES,
    parse_enum,
)
from service.formats import (
    COLUMNS,
    EXTRA_KEY,
    GENERATED_ID_PREFIX,
    MAX_CELL_CHARS,
    MAX_ID_CHARS,
    MAX_LIST_ITEMS,
    MAX_NAME_CHARS,
    MAX_SHORT_CHARS,
    MAX_TITLE_CHARS,
    generated_id,
)
from service.importing.directory import Directory
from service.importing.readers import RawRow, is_blank
from service.validation import (
    FieldError,
    check_length,
    in_home_region,
    normalise_code,
    normalise_text,
    parse_bool,
    parse_date,
    parse_datetime,
    parse_int,
    parse_number,
    province_from_city,
    province_from_credit_code,
    split_list,
    validate_credit_code,
)


class RowErrors(Exception):
    """Collected ``(column label, reason)`` pairs of one row."""

    def __init__(self, errors: list[tuple[str | None, str]]) -> None:
        super().__init__("; ".join(r for _, r in errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Limits:
    max_text_chars: int
    max_title_chars: int = MAX_TITLE_CHARS


class RowParser:
    """Turns raw rows of one table into clean value dicts for the model's attributes.

    ``header_of`` maps canonical keys to the original header (for messages); keys absent
    from the table are absent from the result, so they never overwrite stored values.
    Every other column (except ``ignored`` ones such as 序号) goes to ``values["extra"]``
    (``{header: value}``, None for an empty cell, which removes a stored value).
    """

    def __init__(
        self,
        kind: str,
        header_of: dict[str, str],
        directory: Directory,
        limits: Limits,
        home_region: str,
        ignored: Sequence[str] = (),
    ) -> None:
        self.kind = kind
        self.header_of = header_of
        self.directory = directory
        self.limits = limits
        self.home_region = home_region
        self.ignored = frozenset(ignored)
        self._mapped = frozenset(header_of.values())
        #: Extra columns seen so far (for the summary), in order.
        self.extra_seen: dict[str, None] = {}
        #: Whether the last parsed row got a generated id.
        self.generated = False

    def parse(self, raw: RawRow) -> dict[str, Any]:
        """Clean values keyed by model attribute; raises :class:`RowErrors`."""
        if "__error__" in raw:
            raise RowErrors([(None, str(raw["__error__"]))])
        errors: list[tuple[str | None, str]] = []
        values: dict[str, Any] = {}
        if "__extra__" in raw:
            errors.append((None, "该行的列数多于表头（可能有未加引号的逗号）"))
        getter = getattr(self, f"_{self.kind}")
        for key, header in self.header_of.items():
            value = raw.get(header)
            try:
                if key == EXTRA_KEY:
                    values[EXTRA_KEY] = extra_object(value, self.limits.max_text_chars)
                else:
                    check_shape(key, value)
                    getter(key, value, values)
            except FieldError as exc:
                errors.append((header, str(exc)))
        self._extra(raw, values, errors)
        self._generate_id(values)
        for col in COLUMNS[self.kind]:
            if col.required and col.key in self.header_of and col.key not in values:
                if not any(c == self.header_of[col.key] for c, _ in errors):
                    errors.append((self.header_of[col.key], f"必填项「{col.label}」为空"))
        if not errors:
            try:
                self._cross_fields(values)
            except FieldError as exc:
                errors.append((None, str(exc)))
        if errors:
            raise RowErrors(errors)
        return values

    def _extra(
        self, raw: RawRow, values: dict[str, Any], errors: list[tuple[str | None, str]]
    ) -> None:
        extra: dict[str, Any] = dict(values.get(EXTRA_KEY) or {})
        for header, value in raw.items():
            if header in self._mapped or header in self.ignored or header.startswith("__"):
                continue
            try:
                extra[header] = extra_value(value, self.limits.max_text_chars)
            except FieldError as exc:
                errors.append((header, str(exc)))
                continue
            if extra[header] is not None:
                self.extra_seen.setdefault(header, None)
        if extra:
            values[EXTRA_KEY] = extra

    def _generate_id(self, values: dict[str, Any]) -> None:
        """A need/capability without an id gets one derived from its organisation and title."""
        self.generated = False
        if "external_id" in values or self.kind not in GENERATED_ID_PREFIX:
            return
        if values.get("org") and values.get("title"):
            values["external_id"] = generated_id(self.kind, values["org"], values["title"])
            self.generated = True

    # -- shared pieces
    def _text(self, value: Any, limit: int, what: str) -> str:
        return check_length(normalise_text(value), limit, what)

    def _id(self, value: Any, what: str) -> str | None:
        text = normalise_code(value)
        if not text:
            return None
        return check_length(text, MAX_ID_CHARS, what)

    def _org_ref(self, value: Any, what: str) -> str | None:
        ref = normalise_text(value)
        if not ref:
            return None
        return self.directory.resolve_org(ref, what)

    def _common(self, key: str, value: Any, out: dict[str, Any], table: dict[str, str]) -> bool:
        lim = self.limits
        if key == "external_id":
            if (ext := self._id(value, "编号")) is not None:
                out["external_id"] = ext
        elif key == "title":
            text = self._text(value, lim.max_title_chars, "标题")
            if text:
                out["title"] = text
        elif key in ("description", "proposal"):
            out[key] = self._text(value, lim.max_text_chars, "描述")
        elif key == "field":
            out["field"] = self._text(value, MAX_SHORT_CHARS, "领域") or None
        elif key == "keywords":
            items = split_list(value)
            if len(items) > MAX_LIST_ITEMS:
                raise FieldError(f"关键词过多：{len(items)}个，上限{MAX_LIST_ITEMS}个")
            out["keywords"] = [check_length(k, MAX_SHORT_CHARS, "关键词") for k in items]
        elif key == "budget":
            out["budget"] = None if is_blank(value) else parse_number(value, "预算")
        elif key == "deadline":
            out["deadline"] = None if is_blank(value) else parse_date(value, "截止日期")
        elif key == "status":
            if not is_blank(value):
                out["status"] = parse_enum(value, table, "状态")
        else:
            return False
        return True

    # -- per kind
    def _organisations(self, key: str, value: Any, out: dict[str, Any]) -> None:
        if self._common(key, value, out, ORG_STATUS_ALIASES):
            return
        if key == "name":
            if text := self._text(value, MAX_NAME_CHARS, "单位名称"):
                out["name"] = text
        elif key == "kind":
            if not is_blank(value):
                out["kind"] = parse_enum(value, ORG_KIND_ALIASES, "单位类型")
        elif key == "credit_code":
            out["credit_code"] = None if is_blank(value) else validate_credit_code(str(value))
        elif key in ("province", "city"):
            out[key] = self._text(value, 32, "省份" if key == "province" else "城市") or None
        elif key == "parent":
            out["parent"] = self._id(value, "上级单位")
        elif key == "fields":
            out["fields"] = [check_length(f, MAX_SHORT_CHARS, "领域") for f in split_list(value)]
        elif key == "scale":
            out["scale"] = None if is_blank(value) else parse_enum(value, SCALE_ALIASES, "企业规模")

    def _needs(self, key: str, value: Any, out: dict[str, Any]) -> None:
        if self._common(key, value, out, NEED_STATUS_ALIASES):
            return
        if key == "org":
            if (ext := self._org_ref(value, "需求单位")) is not None:
                out["org"] = ext
        elif key == "confidential":
            out["confidential"] = parse_bool(value)
        elif key == "round":
            out["round"] = self._text(value, 64, "征集批次") or None

    def _capabilities(self, key: str, value: Any, out: dict[str, Any]) -> None:
        if self._common(key, value, out, CAPABILITY_STATUS_ALIASES):
            return
        if key == "org":
            if (ext := self._org_ref(value, "成果单位")) is not None:
                out["org"] = ext
        elif key == "kind":
            out["kind"] = (
                "achievement"
                if is_blank(value)
                else parse_enum(value, CAPABILITY_KIND_ALIASES, "成果类型")
            )
        elif key == "trl":
            out["trl"] = (
                None if is_blank(value) else parse_int(value, "技术成熟度", minimum=1, maximum=9)
            )
        elif key == "year":
            out["year"] = (
                None if is_blank(value) else parse_int(value, "年份", minimum=1900, maximum=2100)
            )

    def _bounties(self, key: str, value: Any, out: dict[str, Any]) -> None:
        if self._common(key, value, out, BOUNTY_STATUS_ALIASES):
            return
        if key == "kind":
            if not is_blank(value):
                out["kind"] = parse_enum(value, BOUNTY_KIND_ALIASES, "榜单类型")
        elif key == "poster":
            if (ext := self._org_ref(value, "发榜单位")) is not None:
                out["poster"] = ext
        elif key == "need":
            ref = self._id(value, "关联需求")
            if ref is not None and ref not in self.directory.needs:
                raise FieldError(f"关联需求「{ref}」不存在")
            out["need"] = ref
        elif key == "capability":
            ref = self._id(value, "关联成果")
            if ref is not None and ref not in self.directory.capabilities:
                raise FieldError(f"关联成果「{ref}」不存在")
            out["capability"] = ref

    def _bids(self, key: str, value: Any, out: dict[str, Any]) -> None:
        if key in ("external_id", "proposal"):
            self._common(key, value, out, {})
        elif key == "bounty":
            ref = self._id(value, "榜单编号")
            if ref is not None:
                if ref not in self.directory.bounties:
                    raise FieldError(f"榜单「{ref}」不存在")
                out["bounty"] = ref
        elif key == "respondent":
            if (ext := self._org_ref(value, "揭榜单位")) is not None:
                out["respondent"] = ext
        elif key == "members":
            members = []
            for ref in split_list(value):
                ext = self.directory.resolve_org(ref, "联合体成员")
                if ext not in members:
                    members.append(ext)
            out["members"] = members
        elif key == "price":
            if not is_blank(value):
                out["price"] = parse_number(value, "报价")
        elif key == "submitted_at" and not is_blank(value):
            out["submitted_at"] = parse_datetime(value, "申报时间")
        elif key in ("funding_enterprise", "funding_academic"):
            what = "企业方财政经费" if key == "funding_enterprise" else "高校院所财政经费"
            out[key] = None if is_blank(value) else parse_number(value, what)

    def _cross_fields(self, values: dict[str, Any]) -> None:
        if self.kind == "organisations":
            # A missing province is derived from the credit code, else from a known city.
            if values.get("province") is None:
                derived = None
                if values.get("credit_code"):
                    derived = province_from_credit_code(values["credit_code"])
                derived = derived or province_from_city(values.get("city"))
                if derived or "province" in values:
                    values["province"] = derived
            if "province" in values:
                values["in_region"] = in_home_region(values["province"], self.home_region)
            if values.get("parent") is not None and values["parent"] == values.get("external_id"):
                raise FieldError("上级单位不能是本单位")
        elif self.kind == "bounties":
            poster = self.directory.orgs.get(values.get("poster", ""))
            if values.get("kind") == "tackle" and poster is not None:
                if poster.kind not in ("enterprise", "company") or not poster.in_region:
                    raise FieldError(
                        f"技术攻关类榜单的发榜单位必须是区内企业（{values['poster']} 为"
                        f"{'区内' if poster.in_region else '区外'}{poster.kind}）"
                    )
        elif self.kind == "bids":
            respondent = values.get("respondent")
            if respondent and respondent in values.get("members", []):
                values["members"] = [m for m in values["members"] if m != respondent]


#: Keys whose value may be a list (JSONL arrays); every other key takes one value.
LIST_KEYS: Final[frozenset[str]] = frozenset({"keywords", "fields", "members"})
_MAX_EXTRA_DEPTH: Final[int] = 8


def check_shape(key: str, value: Any) -> None:
    """Refuse JSON objects, and lists where one value is expected."""
    if isinstance(value, dict):
        raise FieldError("应为文本或数字，不能是 JSON 对象")
    if isinstance(value, list) and (
        key not in LIST_KEYS or any(isinstance(v, (list, dict)) for v in value)
    ):
        raise FieldError("应为单个值，不能是列表" if key not in LIST_KEYS else "列表的项应为文本")


def extra_value(value: Any, max_chars: int, depth: int = 0) -> Any:
    """A value kept as an extra attribute: text cleaned, JSON-safe, bounded; None if empty."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if depth >= _MAX_EXTRA_DEPTH:
        raise FieldError("附加属性嵌套层数过多")
    if isinstance(value, list):
        return [extra_value(v, max_chars, depth + 1) for v in value]
    if isinstance(value, dict):
        return {normalise_text(k): extra_value(v, max_chars, depth + 1) for k, v in value.items()}
    text = normalise_text(value)
    return check_length(text, max(max_chars, MAX_CELL_CHARS), "附加属性") or None


def extra_object(value: Any, max_chars: int) -> dict[str, Any]:
    """The ``extra`` key of JSONL (an object), or its JSON text in a spreadsheet column."""
    if is_blank(value):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise FieldError("附加属性应为 JSON 对象") from None
    if not isinstance(value, dict):
        raise FieldError("附加属性应为 JSON 对象")
    cleaned = extra_value(value, max_chars)
    return cleaned if isinstance(cleaned, dict) else {}


__all__ = ["Limits", "RowErrors", "RowParser", "check_shape", "extra_value"]
