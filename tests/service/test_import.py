"""Import: every format, the per-row report, all-or-nothing vs --partial, idempotence."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from service.formats import export_labels
from service.importing import Importer, ImportReport, detect_kind
from service.models import Bid, Bounty, Capability, Need, Organisation
from tests.service.conftest import Store

ORG_HEADER = [
    "单位编号",
    "单位名称",
    "单位类型",
    "统一社会信用代码",
    "所在省份",
    "所在城市",
    "上级单位",
    "所属领域",
]
ORGS = [
    [
        "G1",
        "广西测试糖业集团有限公司",
        "企业",
        "91350100M000100Y43",
        "广西壮族自治区",
        "南宁",
        "",
        "制糖、机械",
    ],
    ["G2", "崇左测试糖业有限公司", "企业", "", "广西", "崇左", "G1", "制糖"],
    ["G3", "崇左测试蔗渣利用有限公司", "企业", "", "广西", "崇左", "G2", "制糖；新材料"],
    ["U1", "邕江测试大学", "高校", "", "广西", "南宁", "", "制糖 新材料"],
    ["C1", "邕江测试大学科技发展有限公司", "科技公司", "", "广西", "南宁", "U1", "新材料"],
    ["U2", "华南测试大学", "大学", "", "广东省", "广州", "", "制糖"],
    ["E9", "广东测试机械有限公司", "企业", "", "广东省", "广州", "", "机械"],
]
NEED_HEADER = [
    "需求编号",
    "单位编号",
    "需求名称",
    "需求描述",
    "所属领域",
    "关键词",
    "预算(万元)",
    "截止日期",
    "是否保密",
]
NEEDS = [
    [
        "N1",
        "G2",
        "甘蔗压榨抽出率提升",
        "目前压榨抽出率偏低，希望提高到97%。",
        "制糖",
        "甘蔗，压榨",
        "50万元",
        "2026年12月31日",
        "否",
    ],
    [
        "N2",
        "G3",
        "蔗渣制备纤维板",
        "蔗渣综合利用，要求甲醛释放量≤0.05mg/m³。",
        "林业",
        "蔗渣、纤维板",
        "120",
        "2026-10-01",
        "是",
    ],
]


def write_csv(
    path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]], encoding: str = "utf-8"
) -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> Path:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    return path


def write_xlsx(
    path: Path, sheets: dict[str, tuple[Sequence[str], Sequence[Sequence[Any]]]]
) -> Path:
    wb = Workbook()
    wb.remove(wb.active)
    for name, (header, rows) in sheets.items():
        ws = wb.create_sheet(name)
        ws.append(list(header))
        for row in rows:
            ws.append(list(row))
    wb.save(path)
    return path


def run(store: Store, *paths: Path, **kw: Any) -> ImportReport:
    kind = kw.pop("kind", "auto")
    importer = Importer(
        store.factory,
        home_region="广西",
        max_text_chars=kw.pop("max_text_chars", 2000),
        progress=lambda items, *_a, **_k: items,
        **kw,
    )
    return importer.import_paths(list(paths), kind=kind)


def counts(store: Store) -> dict[str, int]:
    with store.factory() as s:
        return {
            m.__tablename__: int(s.scalar(select(func.count()).select_from(m)) or 0)
            for m in (Organisation, Need, Capability, Bounty, Bid)
        }


def snapshot(store: Store) -> dict[str, tuple[Any, ...]]:
    """Every organisation and need with the fields an import may touch."""
    with store.factory() as s:
        out: dict[str, tuple[Any, ...]] = {}
        for o in s.scalars(select(Organisation)):
            out[o.external_id] = (
                o.name,
                o.kind,
                o.credit_code,
                o.province,
                o.in_region,
                o.parent_id,
                o.fields,
                o.updated_at,
                o.content_hash,
            )
        for n in s.scalars(select(Need)):
            out[n.external_id] = (
                n.title,
                n.description,
                n.budget,
                n.deadline,
                n.keywords,
                n.confidential,
                n.updated_at,
                n.content_hash,
            )
        return out


def orgs_csv(tmp_path: Path, encoding: str = "utf-8") -> Path:
    return write_csv(tmp_path / "orgs.csv", ORG_HEADER, ORGS, encoding)


# --------------------------------------------------------------------------- formats


def test_gb18030_csv_is_detected_and_imported(store: Store, tmp_path: Path) -> None:
    path = orgs_csv(tmp_path, "gb18030")
    with pytest.raises(UnicodeDecodeError):
        path.read_text(encoding="utf-8")  # the fixture really is not UTF-8
    report = run(store, path)
    assert report.ok, [i.format() for i in report.issues]
    assert report.files[0].encoding == "GB18030"
    assert report.totals()["created"] == len(ORGS)
    with store.factory() as s:
        g3 = s.scalars(select(Organisation).where(Organisation.external_id == "G3")).one()
        assert g3.name == "崇左测试蔗渣利用有限公司"
        assert g3.fields == ["制糖", "新材料"]
        assert g3.parent is not None and g3.parent.external_id == "G2"
        assert g3.parent.parent is not None and g3.parent.parent.external_id == "G1"
        u1 = s.scalars(select(Organisation).where(Organisation.external_id == "U1")).one()
        assert u1.kind == "university" and u1.fields == ["制糖", "新材料"]
        by_id = {o.external_id: o for o in s.scalars(select(Organisation))}
        assert by_id["C1"].kind == "company" and by_id["C1"].parent_id == u1.id
        assert by_id["G1"].in_region and by_id["G2"].in_region
        assert not by_id["U2"].in_region and not by_id["E9"].in_region
        assert by_id["G1"].credit_code == "91350100M000100Y43"


def test_utf8_bom_csv_and_needs(store: Store, tmp_path: Path) -> None:
    needs = write_csv(tmp_path / "needs.csv", NEED_HEADER, NEEDS, "utf-8-sig")
    report = run(store, needs, orgs_csv(tmp_path))  # order on the command line does not matter
    assert report.ok, [i.format() for i in report.issues]
    assert [f.encoding for f in report.files] == ["UTF-8 (BOM)", "UTF-8"]
    with store.factory() as s:
        n1 = s.scalars(select(Need).where(Need.external_id == "N1")).one()
        assert n1.budget == 50.0 and str(n1.deadline) == "2026-12-31"
        assert n1.keywords == ["甘蔗", "压榨"] and n1.confidential is False
        assert n1.org.external_id == "G2" and n1.content_hash
        n2 = s.scalars(select(Need).where(Need.external_id == "N2")).one()
        assert n2.confidential is True and n2.field == "林业"


def test_xlsx_with_chinese_headers_one_sheet_per_kind(store: Store, tmp_path: Path) -> None:
    cap_header = [
        "成果编号",
        "单位编号",
        "成果类型",
        "成果名称",
        "成果简介",
        "所属领域",
        "关键词",
        "技术成熟度",
        "年份",
    ]
    caps = [
        [
            "K1",
            "U1",
            "专利",
            "一种蔗汁膜分离澄清方法",
            "采用陶瓷膜澄清蔗汁，浊度降至20NTU以内。",
            "制糖",
            "膜分离|澄清",
            6,
            2023,
        ],
        [
            "K2",
            "U2",
            "论文",
            "Ceramic membrane clarification of cane juice",
            "This paper studies ...",
            "制糖",
            "membrane",
            "TRL4",
            "2021年",
        ],
        ["K3", "C1", "实验室/平台", "糖业中试平台", "中试平台", "制糖", "", None, None],
    ]
    path = write_xlsx(
        tmp_path / "book.xlsx",
        {"成果": (cap_header, caps), "单位": (ORG_HEADER, ORGS), "备注": (["说明"], [["ignored"]])},
    )
    report = run(store, path)
    assert report.ok, [i.format() for i in report.issues]
    assert [t.kind for t in report.files[0].tables] == ["organisations", "capabilities"]
    with store.factory() as s:
        got = {
            c.external_id: (c.kind, c.trl, c.year, c.keywords)
            for c in s.scalars(select(Capability))
        }
    assert got == {
        "K1": ("patent", 6, 2023, ["膜分离", "澄清"]),
        "K2": ("paper", 4, 2021, ["membrane"]),
        "K3": ("lab", None, None, []),
    }


def test_xlsx_first_sheet_kind_detected_from_headers(store: Store, tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "list.xlsx", {"Sheet1": (ORG_HEADER, ORGS)})
    report = run(store, path)
    assert report.ok and counts(store)["organisations"] == len(ORGS)


def test_jsonl_import_with_english_keys(store: Store, tmp_path: Path) -> None:
    orgs = write_jsonl(
        tmp_path / "orgs.jsonl",
        [
            {
                "external_id": "E1",
                "name": "柳州测试汽车有限公司",
                "kind": "enterprise",
                "province": "广西",
                "city": "柳州",
                "fields": ["汽车"],
            },
            {
                "external_id": "U1",
                "name": "测试大学",
                "kind": "university",
                "province": "湖南省",
                "fields": "汽车,机械",
            },
        ],
    )
    bounties = write_jsonl(
        tmp_path / "bounties.jsonl",
        [
            {
                "external_id": "B1",
                "kind": "技术攻关类",
                "poster": "E1",
                "title": "轻量化车身",
                "budget": 300,
                "deadline": "2026-09-01",
            }
        ],
    )
    bids = write_jsonl(
        tmp_path / "bids.jsonl",
        [
            {
                "external_id": "D1",
                "bounty": "B1",
                "respondent": "U1",
                "members": ["E1"],
                "price": 280.5,
                "proposal": "方案",
                "submitted_at": "2026-01-05T10:00:00+08:00",
            }
        ],
    )
    report = run(store, bids, bounties, orgs)
    assert report.ok, [i.format() for i in report.issues]
    with store.factory() as s:
        bid = s.scalars(select(Bid)).one()
        assert bid.bounty.external_id == "B1" and bid.respondent.external_id == "U1"
        assert bid.members == ["E1"] and bid.price == 280.5
        assert bid.submitted_at.replace(tzinfo=None).isoformat() == "2026-01-05T02:00:00"
        assert s.scalars(
            select(Organisation).where(Organisation.external_id == "U1")
        ).one().fields == ["汽车", "机械"]


def test_detect_kind_from_headers() -> None:
    assert detect_kind(ORG_HEADER) == "organisations"
    assert detect_kind(NEED_HEADER) == "needs"
    assert detect_kind(["成果编号", "单位编号", "成果名称", "成果简介"]) == "capabilities"
    assert detect_kind(["榜单编号", "榜单类型", "发榜单位编号", "榜单名称"]) == "bounties"
    assert detect_kind(["申报编号", "榜单编号", "揭榜单位编号", "报价(万元)"]) == "bids"
    assert detect_kind(["编号", "名称"]) is None


def test_undetectable_kind_needs_explicit_kind(store: Store, tmp_path: Path) -> None:
    assert run(store, orgs_csv(tmp_path)).ok
    # Fits needs and capabilities equally (id, title, organisation): ambiguous.
    path = write_csv(
        tmp_path / "x.csv", ["编号", "名称", "单位名称"], [["X1", "某项", "邕江测试大学"]]
    )
    report = run(store, path)
    assert not report.ok and "--kind" in report.issues[0].reason
    assert run(store, path, kind="needs").ok
    assert counts(store)["needs"] == 1


def test_detect_kind_by_required_columns_and_fit() -> None:
    # English JSONL keys of a need, none of them distinctive on its own.
    keys = ["external_id", "org", "title", "description", "budget", "deadline"]
    assert detect_kind(keys) == "needs"
    assert detect_kind(["id", "名称", "类型"]) == "organisations"  # only kind with all required
    assert detect_kind(["external_id", "org", "title", "trl"]) == "capabilities"
    assert detect_kind(["编号", "名称", "单位名称"]) is None  # needs or capabilities


# --------------------------------------------------------------------------- bad rows


def bad_orgs(tmp_path: Path) -> Path:
    rows = [
        ["A1", "好企业一", "企业", "", "广西", "南宁", "", ""],  # row 2: good
        ["A2", "坏代码企业", "企业", "91350100M000100Y44", "广西", "南宁", "", ""],  # row 3
        ["A3", "未知上级企业", "企业", "", "广西", "南宁", "NOPE", ""],  # row 4
        ["A4", "循环甲", "企业", "", "广西", "南宁", "A5", ""],  # row 5
        ["A5", "循环乙", "企业", "", "广西", "南宁", "A4", ""],  # row 6
        ["A1", "重复编号", "企业", "", "广西", "南宁", "", ""],  # row 7
        ["A6", "长" * 250, "企业", "", "广西", "南宁", "", ""],  # row 8: name > 200
        ["A7", "好企业二", "企业", "", "广西", "南宁", "A1", ""],  # row 9: good (parent in file)
        ["A8", "未知类型", "政府", "", "广西", "南宁", "", ""],  # row 10
    ]
    return write_csv(tmp_path / "bad_orgs.csv", ORG_HEADER, rows)


EXPECTED_BAD = {
    (3, "统一社会信用代码", "校验位错误"),
    (4, "上级单位", "NOPE"),
    (5, "上级单位", "循环"),
    (6, "上级单位", "循环"),
    (7, "单位编号", "重复"),
    (8, "单位名称", "过长"),
    (10, "单位类型", "无法识别"),
}


def assert_bad_report(report: ImportReport) -> None:
    got = {(i.row, i.column) for i in report.issues}
    assert got == {(row, col) for row, col, _ in EXPECTED_BAD}
    for row, col, fragment in EXPECTED_BAD:
        [issue] = [i for i in report.issues if i.row == row and i.column == col]
        assert fragment in issue.reason and issue.file == "bad_orgs.csv"
        assert f"第{row}行" in issue.format() and f"「{col}」" in issue.format()


def test_bad_rows_reject_the_whole_file_and_leave_store_unchanged(
    store: Store, tmp_path: Path
) -> None:
    assert run(store, orgs_csv(tmp_path)).ok
    before = snapshot(store)
    report = run(store, bad_orgs(tmp_path))
    assert not report.ok and not report.files[0].written
    assert_bad_report(report)
    assert report.files[0].tables[0].created == 0
    assert snapshot(store) == before


def test_partial_imports_good_rows_and_writes_reject_report(store: Store, tmp_path: Path) -> None:
    report = run(store, bad_orgs(tmp_path), partial=True)
    assert_bad_report(report)
    assert report.files[0].written
    with store.factory() as s:
        got = {o.external_id: o for o in s.scalars(select(Organisation))}
        assert set(got) == {"A1", "A7"}
        assert got["A7"].parent_id == got["A1"].id and got["A1"].name == "好企业一"
    out = tmp_path / "rejected.csv"
    report.write_rejected_csv(out)
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM: Excel opens it as UTF-8
    with out.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["行号"]) for r in rows] == [3, 4, 5, 6, 7, 8, 10]
    assert rows[0]["统一社会信用代码"] == "91350100M000100Y44" and "校验位" in rows[0]["原因"]
    assert rows[4]["单位名称"] == "重复编号"  # original columns kept


def test_dry_run_validates_but_writes_nothing(store: Store, tmp_path: Path) -> None:
    needs = write_csv(tmp_path / "needs.csv", NEED_HEADER, NEEDS)
    report = run(store, orgs_csv(tmp_path), needs, dry_run=True)
    assert report.ok, [i.format() for i in report.issues]  # needs saw the orgs of the same run
    assert report.totals()["created"] == len(ORGS) + len(NEEDS)
    assert counts(store)["organisations"] == 0 and counts(store)["needs"] == 0


def test_missing_required_column_is_a_file_level_error(store: Store, tmp_path: Path) -> None:
    header = [h for h in NEED_HEADER if h != "需求名称"]
    rows = [[v for h, v in zip(NEED_HEADER, r, strict=True) if h != "需求名称"] for r in NEEDS]
    assert run(store, orgs_csv(tmp_path)).ok
    report = run(store, write_csv(tmp_path / "needs.csv", header, rows), partial=True)
    [issue] = report.issues
    assert issue.row is None and issue.column == "需求名称" and "缺少必填列" in issue.reason
    assert counts(store)["needs"] == 0


def test_need_row_errors(store: Store, tmp_path: Path) -> None:
    assert run(store, orgs_csv(tmp_path)).ok
    rows = [
        ["M1", "NOBODY", "标题", "描述", "制糖", "", "", "", ""],
        ["M2", "G1", "题" * 301, "描述", "制糖", "", "", "", ""],
        ["M3", "G1", "标题", "述" * 2001, "制糖", "", "", "", ""],
        ["M4", "G1", "标题", "描述", "制糖", "", "五十", "2026-02-30", "可能"],
        ["M5", "G1", "", "描述", "制糖", "", "", "", ""],
        ["M6", "G1", "好需求", "描述", "制糖", "", "", "", ""],
    ]
    report = run(store, write_csv(tmp_path / "needs.csv", NEED_HEADER, rows), partial=True)
    got = {(i.row, i.column): i.reason for i in report.issues}
    assert set(got) == {
        (2, "单位编号"),
        (3, "需求名称"),
        (4, "需求描述"),
        (5, "预算(万元)"),
        (5, "截止日期"),
        (5, "是否保密"),
        (6, "需求名称"),
    }
    assert "NOBODY" in got[(2, "单位编号")] and "不存在" in got[(2, "单位编号")]
    assert "300" in got[(3, "需求名称")] and "2000" in got[(4, "需求描述")]
    assert "为空" in got[(6, "需求名称")]
    with store.factory() as s:
        assert [n.external_id for n in s.scalars(select(Need))] == ["M6"]


def test_needs_may_reference_organisations_by_credit_code_or_name(
    store: Store, tmp_path: Path
) -> None:
    assert run(store, orgs_csv(tmp_path)).ok
    rows = [
        ["M1", "91350100M000100Y43", "按信用代码", "", "制糖", "", "", "", ""],
        ["M2", "邕江测试大学", "按名称", "", "制糖", "", "", "", ""],
    ]
    assert run(store, write_csv(tmp_path / "needs.csv", NEED_HEADER, rows)).ok
    with store.factory() as s:
        assert {n.external_id: n.org.external_id for n in s.scalars(select(Need))} == {
            "M1": "G1",
            "M2": "U1",
        }


def test_tackle_bounty_poster_must_be_in_region_enterprise(store: Store, tmp_path: Path) -> None:
    assert run(store, orgs_csv(tmp_path), write_csv(tmp_path / "needs.csv", NEED_HEADER, NEEDS)).ok
    header = [
        "榜单编号",
        "榜单类型",
        "发榜单位编号",
        "关联需求编号",
        "关联成果编号",
        "榜单名称",
        "榜单金额(万元)",
    ]
    rows = [
        ["B1", "技术攻关类", "G2", "N1", "", "压榨攻关", 50],  # ok
        ["B2", "技术攻关类", "E9", "", "", "区外企业发榜", 50],  # out of region
        ["B3", "技术攻关类", "U1", "", "", "高校发技术攻关榜", 50],  # not an enterprise
        ["B4", "成果转化类", "U2", "", "", "区外高校成果转化", 80],  # ok: transfer from anywhere
        ["B5", "成果转化类", "U1", "", "K404", "关联成果不存在", 80],
    ]
    report = run(store, write_csv(tmp_path / "bounties.csv", header, rows), partial=True)
    got = {(i.row, i.column) for i in report.issues}
    assert got == {(3, None), (4, None), (6, "关联成果编号")}
    assert all("区内企业" in i.reason for i in report.issues if i.row in (3, 4))
    with store.factory() as s:
        assert {b.external_id: b.kind for b in s.scalars(select(Bounty))} == {
            "B1": "tackle",
            "B4": "transfer",
        }


def test_formula_prefix_from_export_is_restored(store: Store, tmp_path: Path) -> None:
    """The export's header row marks the table as ours: its ' prefix is the guard."""
    rows = [["Q1", '\'=HYPERLINK("x")企业', "企业", "", "广西", "南宁", "", "", "正常"]]
    assert run(store, write_csv(tmp_path / "o.csv", export_labels("organisations"), rows)).ok
    with store.factory() as s:
        assert s.scalars(select(Organisation.name)).one() == '=HYPERLINK("x")企业'


def test_oversized_file_is_refused(store: Store, tmp_path: Path) -> None:
    path = orgs_csv(tmp_path)
    report = run(store, path, max_file_bytes=100)
    [issue] = report.issues
    assert "文件过大" in issue.reason and issue.row is None
    assert counts(store)["organisations"] == 0


def test_unreadable_and_unknown_files(store: Store, tmp_path: Path) -> None:
    (tmp_path / "x.pdf").write_bytes(b"%PDF")
    (tmp_path / "empty.csv").write_bytes(b"")
    report = run(store, tmp_path / "x.pdf", tmp_path / "empty.csv", tmp_path / "missing.csv")
    reasons = [i.reason for i in report.issues]
    assert any("不支持" in r for r in reasons) and any("为空" in r for r in reasons)
    assert any("不存在" in r for r in reasons)


# --------------------------------------------------------------------------- idempotence


def test_reimport_is_idempotent(store: Store, tmp_path: Path) -> None:
    paths = [orgs_csv(tmp_path, "gb18030"), write_csv(tmp_path / "needs.csv", NEED_HEADER, NEEDS)]
    first = run(store, *paths)
    assert first.ok and first.totals()["created"] == len(ORGS) + len(NEEDS)
    before, n_before = snapshot(store), counts(store)
    second = run(store, *paths)
    assert second.ok
    assert second.totals() == {
        "rows": len(ORGS) + len(NEEDS),
        "created": 0,
        "updated": 0,
        "unchanged": len(ORGS) + len(NEEDS),
        "rejected": 0,
    }
    assert snapshot(store) == before and counts(store) == n_before


def test_changed_row_updates_only_that_record(store: Store, tmp_path: Path) -> None:
    needs = write_csv(tmp_path / "needs.csv", NEED_HEADER, NEEDS)
    assert run(store, orgs_csv(tmp_path), needs).ok
    before = snapshot(store)
    changed = [list(r) for r in NEEDS]
    changed[1][3] = "蔗渣综合利用，要求甲醛释放量≤0.03mg/m³。"
    report = run(store, write_csv(tmp_path / "needs.csv", NEED_HEADER, changed))
    assert report.totals()["updated"] == 1 and report.totals()["unchanged"] == 1
    after = snapshot(store)
    assert after["N1"] == before["N1"]
    assert after["N2"][1] == changed[1][3]
    assert after["N2"][-1] != before["N2"][-1]  # content hash follows the text
    assert after["N2"][-2] > before["N2"][-2]  # updated_at bumped


def test_parent_change_and_absent_columns_do_not_overwrite(store: Store, tmp_path: Path) -> None:
    assert run(store, orgs_csv(tmp_path)).ok
    # A file without province/credit code/fields columns only touches what it has.
    path = write_csv(
        tmp_path / "o2.csv",
        ["单位编号", "单位名称", "单位类型", "上级单位"],
        [["G3", "崇左测试蔗渣利用有限公司", "企业", "G1"]],
    )
    report = run(store, path)
    assert report.totals()["updated"] == 1
    with store.factory() as s:
        g3 = s.scalars(select(Organisation).where(Organisation.external_id == "G3")).one()
        assert g3.parent is not None and g3.parent.external_id == "G1"
        assert g3.fields == ["制糖", "新材料"] and g3.in_region and g3.province == "广西"


def test_cycle_through_existing_records_is_rejected(store: Store, tmp_path: Path) -> None:
    assert run(store, orgs_csv(tmp_path)).ok  # G3 -> G2 -> G1
    path = write_csv(
        tmp_path / "o2.csv",
        ["单位编号", "单位名称", "单位类型", "上级单位"],
        [["G1", "广西测试糖业集团有限公司", "企业", "G3"]],
    )
    before = snapshot(store)
    report = run(store, path)
    [issue] = report.issues
    assert issue.row == 2 and issue.column == "上级单位" and "循环" in issue.reason
    assert snapshot(store) == before


def test_credit_code_must_stay_unique(store: Store, tmp_path: Path) -> None:
    assert run(store, orgs_csv(tmp_path)).ok
    rows = [["NEW", "冒用代码企业", "企业", "91350100M000100Y43", "广西", "南宁", "", ""]]
    report = run(store, write_csv(tmp_path / "o2.csv", ORG_HEADER, rows))
    [issue] = report.issues
    assert issue.column == "统一社会信用代码" and "G1" in issue.reason


# --------------------------------------------------------------------------- command line


def test_cli_import_exit_codes_and_report(
    store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from service.cli import main
    from service.settings import get_settings

    monkeypatch.setenv("DUIJIE_DATABASE_URL", store.url)
    monkeypatch.setenv("DUIJIE_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    try:
        good, bad = orgs_csv(tmp_path), bad_orgs(tmp_path)
        assert main(["import", "--dry-run", str(good)]) == 0
        assert counts(store)["organisations"] == 0
        assert main(["import", str(bad)]) == 1
        out = capsys.readouterr().out
        assert "bad_orgs.csv 第3行 列「统一社会信用代码」" in out and "未写入" in out
        assert counts(store)["organisations"] == 0
        report = tmp_path / "rep.csv"
        assert main(["import", "--partial", "--report", str(report), str(bad)]) == 1
        assert report.exists() and counts(store)["organisations"] == 2
        assert main(["import", "--partial", str(bad)]) == 1  # default report location
        assert list((tmp_path / "var" / "import_reports").glob("rejected-*.csv"))
        assert main(["import", str(tmp_path / "nope.csv")]) == 2
        assert main(["import", "--kind", "organisations", str(good)]) == 0
        assert main(["export", "--out", str(tmp_path / "exp")]) == 0
        assert (tmp_path / "exp" / "organisations.jsonl").read_text(encoding="utf-8").count(
            "\n"
        ) == len(ORGS) + 2
    finally:
        get_settings.cache_clear()


def test_region_derived_from_credit_code_or_city(store: Store, tmp_path: Path) -> None:
    rows = [
        ["R1", "无省份有代码", "企业", "914502001874633118", "", "", "", ""],  # 45 → Guangxi
        ["R2", "无省份有城市", "企业", "", "", "柳州市", "", ""],
        ["R3", "区外代码", "企业", "91350100M000100Y43", "", "", "", ""],  # 35 → Fujian
        ["R4", "什么都没有", "其他", "", "", "", "", ""],
    ]
    assert run(store, write_csv(tmp_path / "o.csv", ORG_HEADER, rows)).ok
    with store.factory() as s:
        got = {o.external_id: (o.province, o.in_region) for o in s.scalars(select(Organisation))}
    assert got == {
        "R1": ("广西壮族自治区", True),
        "R2": ("广西壮族自治区", True),
        "R3": ("福建省", False),
        "R4": (None, False),
    }


def test_ambiguous_organisation_name_and_bad_jsonl_lines(store: Store, tmp_path: Path) -> None:
    rows = [
        ["D1", "同名企业", "企业", "", "广西", "南宁", "", ""],
        ["D2", "同名企业", "企业", "", "广西", "柳州", "", ""],
    ]
    assert run(store, write_csv(tmp_path / "o.csv", ORG_HEADER, rows)).ok
    path = tmp_path / "needs.jsonl"
    path.write_text(
        '{"external_id": "M1", "org": "同名企业", "title": "按名称引用"}\n'
        "{not json}\n"
        '["a list"]\n'
        '{"external_id": "M2", "org": "D1", "title": "正常"}\n',
        encoding="utf-8",
    )
    # English keys shared by needs and capabilities: the kind must be given.
    assert run(store, path).issues[0].row is None
    report = run(store, path, partial=True, kind="needs")
    got = {i.row: i.reason for i in report.issues}
    assert set(got) == {1, 2, 3}
    assert "多个同名单位" in got[1] and "JSON" in got[2] and "JSON 对象" in got[3]
    with store.factory() as s:
        assert list(s.scalars(select(Need.external_id))) == ["M2"]


def test_progress_wrapper_paths(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from service.importing.report import default_progress, log_progress

    assert list(default_progress(True)(range(3), "x", total=3)) == [0, 1, 2]  # tqdm
    assert list(default_progress(False)(range(3), "x")) == [0, 1, 2]
    ticks = iter(float(t) for t in range(10_000))  # one second per call of the clock
    with caplog.at_level(logging.INFO, logger="service.importing.report"):
        got = list(
            log_progress(
                range(640), "写入 x", total=1280, every_seconds=3, clock=lambda: next(ticks)
            )
        )
    assert got == list(range(640))
    messages = [r.getMessage() for r in caplog.records]
    # Checked every 64 rows: at 192 rows 3 s have passed -> 64 rows/s, 1088 left -> 17 s.
    assert messages[0] == "写入 x：192/1280 行（15%），64 行/秒，预计还需 17秒"
    assert messages[-1].startswith("写入 x：完成 640 行，用时 11秒")


def test_utf16_tab_separated_text_from_excel(store: Store, tmp_path: Path) -> None:
    """Excel's "Unicode text" export: UTF-16 with BOM, tab-separated (charset-normalizer path)."""
    path = tmp_path / "excel.txt"
    path.write_text(
        "单位编号\t单位名称\t单位类型\t所在省份\nW1\t测试企业\t企业\t广西\n", encoding="utf-16"
    )
    report = run(store, path)
    assert report.ok and report.files[0].encoding == "UTF_16"
    with store.factory() as s:
        assert s.scalars(select(Organisation.name)).one() == "测试企业"


def test_big_tables_are_re_read_instead_of_cached(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above CACHED_ROWS the write pass streams the file again; results are the same."""
    import service.importing.validate

    monkeypatch.setattr(service.importing.validate, "CACHED_ROWS", 1)
    report = run(store, bad_orgs(tmp_path), partial=True)
    assert_bad_report(report)
    needs = write_csv(tmp_path / "needs.csv", NEED_HEADER, NEEDS)
    assert run(store, orgs_csv(tmp_path), needs).ok
    with store.factory() as s:
        got = {o.external_id: o for o in s.scalars(select(Organisation))}
        assert {"A1", "A7", "G1", "G2", "G3"} <= set(got)
        assert got["A7"].parent_id == got["A1"].id and got["G3"].parent_id == got["G2"].id
        assert {n.external_id for n in s.scalars(select(Need))} == {"N1", "N2"}


def test_dry_run_later_files_see_exactly_what_a_real_run_would_write(
    store: Store, tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    bad = bad_orgs(tmp_path / "a")  # fails: none of A1..A8 would be written
    good = orgs_csv(tmp_path / "b")
    rows = [
        ["N1", "G2", "好需求", "", "制糖", "", "", "", ""],
        ["N2", "A1", "引用失败文件中的单位", "", "制糖", "", "", "", ""],
    ]
    needs = write_csv(tmp_path / "needs.csv", NEED_HEADER, rows)
    report = run(store, bad, good, needs, dry_run=True)
    needs_issues = [i for i in report.issues if i.file == "needs.csv"]
    assert [(i.row, i.column) for i in needs_issues] == [(3, "单位编号")]  # G2 seen, A1 not
    assert report.files[1].ok and report.files[1].tables[0].created == len(ORGS)
    assert counts(store) == dict.fromkeys(counts(store), 0)
    # And a real run agrees.
    real = run(store, bad, good, needs)
    assert [(i.file, i.row) for i in real.issues if i.file == "needs.csv"] == [("needs.csv", 3)]
    assert counts(store)["organisations"] == len(ORGS) and counts(store)["needs"] == 0


def test_forced_encoding(store: Store, tmp_path: Path) -> None:
    """Big5 bytes also decode as GB18030 (wrongly): --encoding overrides detection."""
    header = ["external_id", "name", "kind", "province", "city"]
    path = write_csv(
        tmp_path / "big5.csv", header, [["T1", "臺灣測試企業", "other", "臺灣省", "臺北"]], "big5"
    )
    wrong = run(store, path, dry_run=True)
    assert wrong.files[0].encoding == "GB18030" or not wrong.ok  # detection cannot know
    report = run(store, path, encoding="big5")
    assert report.ok and report.files[0].encoding == "BIG5"
    with store.factory() as s:
        assert s.scalars(select(Organisation.name)).one() == "臺灣測試企業"
    bad = run(store, path, encoding="utf-8")
    assert "不是有效的 utf-8" in bad.issues[0].reason
    assert "未知的编码" in run(store, path, encoding="nope").issues[0].reason


def test_rejected_row_details_are_capped(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import service.importing.validate

    monkeypatch.setattr(service.importing.validate, "MAX_KEPT_REJECTED_ROWS", 2)
    report = run(store, bad_orgs(tmp_path), partial=True)
    detailed = [i for i in report.issues if i.row is not None]
    assert sorted({i.row for i in detailed}) == [3, 7]  # row-level checks run first
    [summary] = [i for i in report.issues if i.row is None]
    assert "另有 5 行被拒绝" in summary.reason
    assert report.files[0].tables[0].rejected == 7 and len(report.files[0].rejected_rows) == 2
    with store.factory() as s:  # the good rows are still the only ones written
        assert set(s.scalars(select(Organisation.external_id))) == {"A1", "A7"}
