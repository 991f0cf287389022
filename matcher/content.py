"""Technical and administrative content of need, capability and bounty texts.

Enterprises write a need as a company profile, the technical problem, then cooperation mode,
period, budget and contact; capability texts end with patents granted, awards, team size or
a service's turnaround. Only the technical part says what the need or capability is about:
matching, ranking and explanations use it, the administrative part is kept for display.

The unit is a *clause*: the text is cut into sentences (:func:`matcher.textutil.sentence_spans`:
。！？；; and newlines) and each sentence at commas and colons. A clause is administrative when
it carries a marker of :data:`ADMIN_MARKERS` (company profile, cooperation, period, money,
contact, intellectual property, eligibility terms, credentials), or when it follows an
administrative label of the same sentence ("合作方式：委托开发" — the value of the label is
administrative too). Adjacent technical clauses of one sentence form one technical span,
a verbatim substring of the text, so explanation snippets stay verbatim.

Also here: :data:`BOILERPLATE_WORDS`, the requirement boilerplate that is not a keyword
(以内, 满足, 达到, 方式, 采用, 测试 ...), and :class:`KeywordWeights`, corpus IDF weights that
rank shared keywords by how much they say and drop the ones most documents share.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple

from matcher.textutil import sentence_spans

#: Markers of administrative clauses. Deliberately specific: a technical clause that only
#: mentions cooperation in passing ("寻求高校院所在膜分离方面的合作") has none of them.
ADMIN_MARKERS = re.compile(
    # company profile
    r"公司位于|位于.{1,8}(市|区|县)|主要从事|主要生产|主营|(我|本)(公司|企业|厂)是|年产值|产值约|年销售|销售收入|营业收入|成立于|"
    r"现有员工|员工约?\d|注册资本|龙头企业|骨干企业|高新技术企业|上市公司|下属|旗下|"
    r"\d+条.{0,12}生产线|公司高度重视|设有.{0,12}(中心|平台)|日榨|"
    # cooperation, period, money, terms
    r"合作方式|合作模式|项目周期|周期\d|周期为|周期约|\d+个(月|工作日)|预算|经费|万元|榜单金额|"
    r"知识产权|归属双方|截止|揭榜方需|征集|优先考虑|者优先|优先$|合作方具有|工程化经验|"
    r"应用案例|示范案例|改造条件|欢迎.*(联系|洽谈)|洽谈|配套研发人员|中试场地|生产数据|"
    # contact
    r"联系人|联系电话|电话|手机|邮箱|e-?mail|传真|地址|网址|"
    # credentials of a capability
    r"已获授权|授权发明专利|专利号|可转让或许可|示范应用|新增产值|获.{0,16}奖|"
    r"承担国家和省部级项目|承担.{0,8}项目\d+项|正高级职称|成员\d+人|平台面积|平方米|"
    r"仪器设备\d+台套|开放共享|CMA|资质|技术成熟度高|产业化推广|中试放大合作|提供技术支撑|"
    r"第三方测试|出具",
    re.IGNORECASE,
)

#: Labels whose value (the rest of the sentence) is administrative as well.
ADMIN_LABEL = re.compile(
    r"(合作方式|合作模式|项目周期|周期|预算|经费|联系人|联系电话|电话|邮箱|地址|知识产权)\s*$"
)

_CLAUSE_END = re.compile(r"[，,：:]")
_SENTENCE_TAIL = re.compile(r"[。！？；;!?.]\s*$")

#: Requirement boilerplate: words every need or capability uses whatever its topic. Never
#: shown or counted as a shared keyword (function words are in textutil.STOPWORDS).
BOILERPLATE_WORDS: frozenset[str] = frozenset(
    """
    以内 以上 以下 左右 之间 满足 达到 方式 采用 测试 要求 同时 现状 条件 改善 稳定 控制在
    现有 产线 改造 完成 验证 委托 咨询 服务 转让 联合 承担 周期 个月 万元 预算 经费 联系人
    联系 电话 合作方 基础 经验 优先 考虑 案例 拥有 工程化 示范 目前 存在 较多 较大 偏高 偏低
    逐渐 近年来 随着 订单 增长 瓶颈 手段 加以 拟 引进 有效 能够 系统地 考察 结果表明 表明
    对照 较 传统 工艺参数 参数 影响 步骤 包括 预处理 公开 本发明 发明 本成果 成果 形成 完整
    方案 研制 成套 配套 人员 参与 场地 数据 生产数据 中试 小试 放大 企业现场 现场 双方 协商
    归属 具有 行业 骨干 生产线 主营 主要 从事 位于 年产值 亿元 产值 新增 授权 专利 家 项
    批次 导致 造成 出现 发现 进行 开展 提出 建立 分析 初步 有关 相关 团队 单位 高校 院所
    一级 标准 技术指标 指标 合格率 不合格率 降到 提高到 控制 优化 提升 降低 减少 增加
    """.split()
)

#: Words never shown as a shared keyword but still counted in keyword overlap: generic verbs
#: and the function words BM25 keeps (textutil.STOPWORDS leaves them in). Counting them
#: measured better on CSL (cross-need per-need nDCG@10 0.6629 with them, 0.6568 without).
NOT_SHOWN_WORDS: frozenset[str] = frozenset("使用 利用 方法 生产 关于 其中 及其 对于 已经".split())


def keyword_like(token: str) -> bool:
    """Whether ``token`` can be a shared keyword at all: two characters or more, not
    requirement boilerplate or a word never shown (:data:`NOT_SHOWN_WORDS`), no figures
    ("12%", "100gAl") and no bare unit ("mL")."""
    if len(token) < 2 or token in BOILERPLATE_WORDS or token in NOT_SHOWN_WORDS:
        return False
    if any(ch.isdigit() for ch in token):
        return False
    return not (token.isascii() and len(token) <= 2)


class Content(NamedTuple):
    """A text cut into its technical and administrative parts.

    technical : technical spans, each ended by its terminator ("。" added where missing) (the whole text when no clause is technical,
        so a query never becomes empty).
    administrative : administrative clauses joined by "；" (for display).
    spans : (start, end) of every technical span, verbatim ``text[start:end]``.
    """

    technical: str
    administrative: str
    spans: tuple[tuple[int, int], ...]


def is_administrative(clause: str) -> bool:
    """True if ``clause`` carries an administrative marker."""
    return ADMIN_MARKERS.search(clause) is not None


def _clauses(text: str, start: int, end: int) -> list[tuple[int, int, bool]]:
    """(start, end, administrative) of the clauses of one sentence ``text[start:end]``."""
    out: list[tuple[int, int, bool]] = []
    pos = start
    inherited = False
    cuts = [m.end() for m in _CLAUSE_END.finditer(text, start, end)] + [end]
    for cut in cuts:
        s, e = pos, cut
        pos = cut
        raw = text[s:e]
        body = raw.rstrip("，,：: \t")
        if not body.strip():
            continue
        lead = len(raw) - len(raw.lstrip())
        admin = inherited or is_administrative(body)
        if raw.rstrip().endswith(("：", ":")) and ADMIN_LABEL.search(body):
            inherited = True
        out.append((s + lead, s + len(body), admin))
    return out


@lru_cache(maxsize=16384)
def split(text: str) -> Content:
    """Technical and administrative parts of ``text`` (see the module docstring)."""
    spans: list[tuple[int, int]] = []
    admin: list[str] = []
    for s_start, s_end in sentence_spans(text):
        run: tuple[int, int] | None = None
        for c_start, c_end, is_admin in _clauses(text, s_start, s_end):
            if is_admin:
                admin.append(text[c_start:c_end])
                if run is not None:
                    spans.append(run)
                    run = None
            else:
                run = (run[0], c_end) if run is not None else (c_start, c_end)
        if run is not None:
            spans.append(run)
    technical = "".join(
        text[s:e] if _SENTENCE_TAIL.search(text[s:e]) else text[s:e] + "。" for s, e in spans
    )
    return Content(technical or text, "；".join(admin), tuple(spans))


def technical_text(text: str) -> str:
    """The technical part of ``text`` (the whole text when nothing technical is found)."""
    return split(text).technical


def technical_sentences(text: str) -> list[str]:
    """The technical spans of ``text`` as verbatim substrings (all sentences of the text
    when none is technical)."""
    spans = split(text).spans
    if not spans:
        return [text[s:e] for s, e in sentence_spans(text)]
    return [text[s:e] for s, e in spans]


class KeywordWeights:
    """Inverse document frequency of keywords over a corpus of keyword sets.

    ``idf(t) = log((1 + n) / (1 + df(t))) + 1`` (scikit-learn's smooth IDF). A keyword is
    *informative* when it can be a keyword at all (:func:`keyword_like`: not requirement
    boilerplate, at least two characters, no figures) and occurs in at most ``max_df`` of the
    documents.

    Parameters
    ----------
    keyword_sets : iterable of sets of str
        One keyword set per document of the corpus.
    max_df : float
        Highest document frequency (share of documents) of an informative keyword.
    """

    def __init__(self, keyword_sets: Iterable[Iterable[str]], *, max_df: float = 0.2) -> None:
        df: Counter[str] = Counter()
        n = 0
        for kws in keyword_sets:
            n += 1
            df.update(set(kws))
        self.n_documents = n
        self.max_df = max_df
        self.df = dict(df)
        # keyword set -> its informative part; a document's set is asked for on every request
        # that shows it (frozensets keep their hash, so a hit costs one lookup)
        self._informative_parts: dict[frozenset[str], frozenset[str]] = {}

    def idf(self, keyword: str) -> float:
        """Smooth IDF of ``keyword`` (unseen keywords get the highest value)."""
        return math.log((1 + self.n_documents) / (1 + self.df.get(keyword, 0))) + 1.0

    def informative(self, keyword: str) -> bool:
        """Whether ``keyword`` says something about a topic (see the class docstring)."""
        if not keyword_like(keyword):
            return False
        if self.n_documents == 0:
            return True
        return self.df.get(keyword, 0) <= self.max_df * self.n_documents

    def informative_part(self, keywords: frozenset[str]) -> frozenset[str]:
        """The informative keywords of ``keywords`` (memoised: at most one entry per
        distinct keyword set, i.e. per document)."""
        part = self._informative_parts.get(keywords)
        if part is None:
            part = self._informative_parts[keywords] = frozenset(
                k for k in keywords if self.informative(k)
            )
        return part

    def ranked(self, keywords: Iterable[str], *, limit: int = 10) -> tuple[str, ...]:
        """Informative ``keywords``, most specific (highest IDF) first, then longest, then
        alphabetical (deterministic)."""
        kept = {k for k in keywords if self.informative(k)}
        return tuple(sorted(kept, key=lambda k: (-self.idf(k), -len(k), k))[:limit])
