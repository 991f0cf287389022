"""The enumerations of imported records and their Chinese aliases (高校 → university, 已立项 →
awarded, 50 spellings staff use), and :func:`parse_enum`, which maps any of them to the
canonical value with a Chinese error listing what is accepted.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

from matcher.types import BOUNTY_KINDS, CAPABILITY_KINDS, ORG_KINDS
from service.validation import FieldError, normalise_text


def _enum_parser(canonical: tuple[str, ...], aliases: dict[str, str], what: str) -> dict[str, str]:
    table = {c: c for c in canonical}
    table.update(aliases)
    return {k.lower(): v for k, v in table.items()}


ORG_SCALES: Final[tuple[str, ...]] = ("micro", "small", "medium", "large")
SME_SCALES: Final[frozenset[str]] = frozenset({"micro", "small", "medium"})
SCALE_ALIASES: Final[dict[str, str]] = _enum_parser(
    ORG_SCALES,
    {"微型": "micro", "小型": "small", "中型": "medium", "大型": "large", "微": "micro",
     "小": "small", "中": "medium", "大": "large", "中小企业": "small", "小微": "micro",
     "小微企业": "micro", "大型企业": "large", "中型企业": "medium", "小型企业": "small"},
    "企业规模",
)  # fmt: skip

ORG_KIND_ALIASES: Final[dict[str, str]] = _enum_parser(
    ORG_KINDS,
    {
        "企业": "enterprise",
        "公司": "enterprise",
        "高校": "university",
        "大学": "university",
        "学院": "university",
        "高等院校": "university",
        "科研院所": "institute",
        "研究院": "institute",
        "研究所": "institute",
        "科研机构": "institute",
        "院所": "institute",
        "科技公司": "company",
        "校办企业": "company",
        "其他": "other",
        "其它": "other",
    },
    "单位类型",
)
CAPABILITY_KIND_ALIASES: Final[dict[str, str]] = _enum_parser(
    CAPABILITY_KINDS,
    {
        "成果": "achievement",
        "科技成果": "achievement",
        "专利": "patent",
        "发明专利": "patent",
        "论文": "paper",
        "团队": "team",
        "科研团队": "team",
        "实验室": "lab",
        "平台": "lab",
        "实验室/平台": "lab",
        "服务": "service",
        "技术服务": "service",
    },
    "成果类型",
)
BOUNTY_KIND_ALIASES: Final[dict[str, str]] = _enum_parser(
    BOUNTY_KINDS,
    {
        "技术攻关类": "tackle",
        "技术攻关": "tackle",
        "攻关": "tackle",
        "成果转化类": "transfer",
        "成果转化": "transfer",
        "转化": "transfer",
    },
    "榜单类型",
)
ORG_STATUS_ALIASES: Final[dict[str, str]] = _enum_parser(
    ("active", "inactive"), {"正常": "active", "有效": "active", "停用": "inactive"}, "状态"
)
CAPABILITY_STATUS_ALIASES: Final[dict[str, str]] = _enum_parser(
    ("active", "inactive"),
    {"有效": "active", "正常": "active", "失效": "inactive", "下架": "inactive"},
    "状态",
)
NEED_STATUS_ALIASES: Final[dict[str, str]] = _enum_parser(
    ("open", "matched", "closed"),
    {
        "开放": "open",
        "征集中": "open",
        "待对接": "open",
        "已对接": "matched",
        "已匹配": "matched",
        "已关闭": "closed",
        "关闭": "closed",
    },
    "状态",
)
#: The lifecycle states of service.bounty_lifecycle, which labels them and owns the moves
#: (listed here because validation imports no model); the importer and the API filter use them.
BountyState = Literal[
    "proposed",
    "assessing",
    "published",
    "open",
    "screening",
    "reviewing",
    "negotiating",
    "awarded",
    "notice",
    "completed",
    "withdrawn",
]
BOUNTY_STATES: Final[tuple[str, ...]] = get_args(BountyState)
BOUNTY_STATUS_ALIASES: Final[dict[str, str]] = _enum_parser(
    BOUNTY_STATES,
    {
        "征集": "proposed",
        "论证": "assessing",
        "发榜": "published",
        "申报中": "open",
        "征集中": "open",
        "开放": "open",
        "揭榜中": "open",
        "资格审查": "screening",
        "评审": "reviewing",
        "洽谈": "negotiating",
        "已立项": "awarded",
        "已揭榜": "awarded",
        "已授榜": "awarded",
        "公示": "notice",
        "结项": "completed",
        "closed": "completed",
        "已关闭": "completed",
        "关闭": "completed",
        "撤榜": "withdrawn",
    },
    "状态",
)


def parse_enum(value: object, table: dict[str, str], what: str) -> str:
    """Map a value (canonical English or a Chinese alias, any case) to its canonical form."""
    text = normalise_text(value)
    key = text.lower()
    if key in table:
        return table[key]
    allowed = "、".join(sorted({k for k in table if not k.isascii()} | set(table.values())))
    raise FieldError(f"{what}取值无法识别：{text}（可选：{allowed}）")


__all__ = [
    "parse_enum",
    "BOUNTY_KIND_ALIASES",
    "BOUNTY_STATES",
    "BOUNTY_STATUS_ALIASES",
    "BountyState",
    "CAPABILITY_KIND_ALIASES",
    "CAPABILITY_STATUS_ALIASES",
    "NEED_STATUS_ALIASES",
    "ORG_KIND_ALIASES",
    "ORG_SCALES",
    "ORG_STATUS_ALIASES",
    "SCALE_ALIASES",
    "SME_SCALES",
]
