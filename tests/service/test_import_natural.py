"""Spreadsheets as staff have them: Chinese header variants, names instead of ids, extra
columns kept, generated ids, English JSONL without --kind, and what a dry run reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from service.commands.data import format_report
from service.exporter import export_store
from service.importing import Importer
from service.models import Need, Organisation
from tests.service.conftest import Store
from tests.service.test_import import (
    ORG_HEADER,
    counts,
    orgs_csv,
    run,
    write_csv,
    write_jsonl,
    write_xlsx,
)

STAFF_HEADER = [
    "序号",
    "企业名称",
    "技术需求名称",
    "需求简介",
    "技术领域",
    "关键字",
    "预算金额（万元）",
    "完成时限",
    "联系人",
    "联系电话",
]
STAFF_ROWS = [
    [
        1,
        "崇左测试糖业有限公司",
        "甘蔗压榨抽出率提升",
        "抽出率偏低",
        "制糖",
        "甘蔗、压榨",
        50,
        "2026年12月",
        "李工",
        "0771-1234567",
    ],
    [
        2,
        "邕江测试大学科技发展有限公司",
        "膜材料中试",
        "中试放大",
        "新材料",
        "膜",
        "",
        "2027-06-30",
        "王工",
        "",
    ],
]


def _staff_sheet(tmp_path: Path, rows: list[list[object]] = STAFF_ROWS) -> Path:
    return write_xlsx(tmp_path / "需求汇总.xlsx", {"Sheet1": (STAFF_HEADER, rows)})


def test_staff_spreadsheet_headers_names_and_extras(store: Store, tmp_path: Path) -> None:
    assert run(store, orgs_csv(tmp_path)).ok
    path = _staff_sheet(tmp_path)
    report = run(store, path)
    assert report.ok, report.issues
    [table] = report.files[0].tables
    assert table.kind == "needs" and table.created == 2
    assert table.extra_columns == ["联系人", "联系电话"] and table.ignored_columns == ["序号"]
    lines = format_report(report)
    assert any("联系人" in line and "附加属性" in line for line in lines)
    with store.factory() as s:
        needs = {n.title: n for n in s.scalars(select(Need))}
        org = s.scalars(select(Organisation).where(Organisation.external_id == "G2")).one()
    first = needs["甘蔗压榨抽出率提升"]
    assert first.org_id == org.id and first.description == "抽出率偏低"
    assert first.field == "制糖" and first.keywords == ["甘蔗", "压榨"] and first.budget == 50
    assert str(first.deadline) == "2026-12-31"
    assert first.extra == {"联系人": "李工", "联系电话": "0771-1234567"}
    assert needs["膜材料中试"].extra == {"联系人": "王工"}  # an empty cell keeps nothing
    assert first.external_id.startswith("NEED-")
    # Re-import: the generated ids are stable, so nothing is added or changed.
    again = run(store, path)
    assert again.files[0].tables[0].unchanged == 2 and counts(store)["needs"] == 2


def test_extra_columns_survive_export_and_reimport(store: Store, tmp_path: Path) -> None:
    assert run(store, orgs_csv(tmp_path)).ok
    assert run(store, _staff_sheet(tmp_path)).ok
    for fmt in ("csv", "xlsx", "jsonl"):
        out = tmp_path / (f"{fmt}.xlsx" if fmt == "xlsx" else fmt)
        files = export_store(store.factory, out, fmt)["files"]  # type: ignore[arg-type]
        report = run(store, *files)
        assert report.ok, (fmt, report.issues)
        assert sum(t.created + t.updated for f in report.files for t in f.tables) == 0, fmt
    with store.factory() as s:
        extras = sorted((n.extra or {}).get("联系人", "") for n in s.scalars(select(Need)))
    assert extras == ["李工", "王工"]


def test_blank_extra_cell_removes_only_that_key(store: Store, tmp_path: Path) -> None:
    assert run(store, orgs_csv(tmp_path)).ok
    assert run(store, _staff_sheet(tmp_path)).ok
    rows = [list(STAFF_ROWS[0])]
    rows[0][9] = ""  # 联系电话 emptied
    report = run(store, _staff_sheet(tmp_path, rows))
    assert report.files[0].tables[0].updated == 1
    with store.factory() as s:
        need = s.scalars(select(Need).where(Need.title == "甘蔗压榨抽出率提升")).one()
    assert need.extra == {"联系人": "李工"}


def test_duplicate_generated_id_and_ambiguous_name(store: Store, tmp_path: Path) -> None:
    rows = [
        ["D1", "同名企业", "企业", "", "广西", "南宁", "", ""],
        ["D2", "同名企业", "企业", "", "广西", "柳州", "", ""],
        ["D3", "独有企业（集团）", "企业", "", "广西", "柳州", "", ""],
    ]
    assert run(store, write_csv(tmp_path / "o.csv", ORG_HEADER, rows)).ok
    sheet = [
        [1, "同名企业", "需求甲", "", "", "", "", "", "", ""],
        [2, "独有企业(集团)", "需求乙", "", "", "", "", "", "", ""],  # half-width brackets
        [3, "独有企业（集团）", "需求乙", "", "", "", "", "", "", ""],  # the same need again
    ]
    report = run(store, _staff_sheet(tmp_path, sheet), partial=True)
    got = {i.row: i.reason for i in report.issues}
    assert set(got) == {2, 4}
    assert "多个同名单位" in got[2] and "D1" in got[2] and "D2" in got[2]
    assert "重复" in got[4] and "第3行" in got[4]
    assert report.files[0].tables[0].created == 1


def test_english_jsonl_needs_no_kind(store: Store, tmp_path: Path) -> None:
    assert run(store, orgs_csv(tmp_path)).ok
    path = write_jsonl(
        tmp_path / "needs.jsonl",
        [
            {
                "external_id": "E1",
                "org": "G2",
                "title": "英文键",
                "budget": 10,
                "deadline": "2026-01-01",
            },
            {"org": "G3", "title": "无编号", "description": "x", "contact": "Li"},
        ],
    )
    report = run(store, path)
    assert report.ok, report.issues
    assert report.files[0].tables[0].kind == "needs" and counts(store)["needs"] == 2
    assert report.files[0].tables[0].extra_columns == ["contact"]


def test_dry_run_reports_what_would_be_added_and_updated(store: Store, tmp_path: Path) -> None:
    orgs = orgs_csv(tmp_path)
    dry = run(store, orgs, dry_run=True)
    assert dry.ok and dry.files[0].tables[0].created == 7 and counts(store)["organisations"] == 0
    assert any("将新增 7" in line for line in format_report(dry))
    assert run(store, orgs).ok
    rows = [["G1", "改名后的集团", "企业", "91350100M000100Y43", "广西", "南宁", "", "制糖"]]
    again = run(store, write_csv(tmp_path / "o2.csv", ORG_HEADER, rows), dry_run=True)
    assert again.files[0].tables[0].updated == 1
    with store.factory() as s:  # still nothing written
        assert s.scalars(
            select(Organisation.name).where(Organisation.external_id == "G1")
        ).one() != ("改名后的集团")


def test_unnamed_xlsx_columns_are_kept_not_dropped(store: Store, tmp_path: Path) -> None:
    assert run(store, orgs_csv(tmp_path)).ok
    rows = [[*STAFF_ROWS[0], "备注写在表头外"]]
    header = [*STAFF_HEADER[:8], "", STAFF_HEADER[9]]  # 联系人 header left blank
    report = run(store, write_xlsx(tmp_path / "s.xlsx", {"Sheet1": (header, rows)}))
    assert report.ok, report.issues
    assert report.files[0].tables[0].extra_columns == ["列I", "联系电话", "列K"]
    with store.factory() as s:
        need = s.scalars(select(Need)).one()
    assert need.extra == {"列I": "李工", "联系电话": "0771-1234567", "列K": "备注写在表头外"}


def test_file_changed_between_passes_is_not_written(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import service.importing.validate

    monkeypatch.setattr(service.importing.validate, "CACHED_ROWS", 0)  # re-read to write
    path = orgs_csv(tmp_path)

    def touch(items: Iterable[Any], desc: str, total: int | None = None) -> Iterator[Any]:
        yield from items
        if desc.startswith("校验"):
            path.write_text(path.read_text(encoding="utf-8") + "Z9,新增企业,企业,,广西,南宁,,\n")

    report = Importer(store.factory, progress=touch).import_paths([path])
    assert "文件在导入过程中被修改" in report.issues[0].reason
    assert counts(store)["organisations"] == 0
