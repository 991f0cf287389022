"""Export: re-importable round trip (JSONL, XLSX, CSV) and formula neutralisation."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from service.exporter import export_store
from service.formats import neutralise_cell
from service.importing import Importer
from service.models import Bid, Bounty, Capability, Need, Organisation
from tests.service.conftest import Store


def _importer(store: Store) -> Importer:
    return Importer(
        store.factory, home_region="广西", max_text_chars=5000, progress=lambda i, *_a, **_k: i
    )


def _seed(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "seed"
    src.mkdir()
    lines = {
        "organisations.jsonl": [
            {
                "external_id": "G1",
                "name": "=广西测试集团有限公司",
                "kind": "enterprise",
                "credit_code": "91350100M000100Y43",
                "province": "广西壮族自治区",
                "city": "南宁",
                "fields": ["制糖", "机械"],
            },
            {
                "external_id": "G2",
                "name": "+柳州测试汽车有限公司",
                "kind": "enterprise",
                "province": "广西",
                "city": "柳州",
                "parent": "G1",
                "fields": ["汽车"],
            },
            {
                "external_id": "U1",
                "name": "@测试大学",
                "kind": "university",
                "province": "湖北省",
                "city": "武汉",
                "fields": [],
            },
            {
                "external_id": "C1",
                "name": "测试大学科技公司",
                "kind": "company",
                "province": "湖北省",
                "parent": "U1",
                "fields": ["新材料"],
                "status": "inactive",
            },
        ],
        "needs.jsonl": [
            {
                "external_id": "N1",
                "org": "G2",
                "title": "-20℃低温启动",
                "description": "第一行\n第二行，含中文标点。",
                "field": "汽车",
                "keywords": ["低温", "cold start"],
                "budget": 80,
                "deadline": "2026-12-31",
                "confidential": True,
                "status": "matched",
            },
            {
                "external_id": "N2",
                "org": "G1",
                "title": "+86 热线咨询需求",
                "description": "",
                "field": None,
                "keywords": [],
                "budget": None,
            },
        ],
        "capabilities.jsonl": [
            {
                "external_id": "K1",
                "org": "U1",
                "kind": "paper",
                "title": "Membrane clarification",
                "description": "=1+1 is not a formula here",
                "field": "制糖",
                "keywords": ["deep learning", "membrane"],
                "trl": 4,
                "year": 2022,
            },
            {
                "external_id": "K2",
                "org": "C1",
                "kind": "lab",
                "title": "中试平台",
                "trl": None,
                "year": None,
                "status": "inactive",
            },
        ],
        "bounties.jsonl": [
            {
                "external_id": "B1",
                "kind": "tackle",
                "poster": "G2",
                "need": "N1",
                "title": "低温启动攻关",
                "description": "描述",
                "budget": 100.5,
                "deadline": "2026-06-30",
                "status": "awarded",
            },
            {
                "external_id": "B2",
                "kind": "transfer",
                "poster": "U1",
                "capability": "K1",
                "title": "膜澄清成果转化",
                "budget": 60,
            },
        ],
        "bids.jsonl": [
            {
                "external_id": "D1",
                "bounty": "B1",
                "respondent": "U1",
                "members": ["C1", "G1"],
                "price": 95.0,
                "proposal": "-分三阶段实施",
                "submitted_at": "2026-01-05T10:30:00+08:00",
            },
            {
                "external_id": "D2",
                "bounty": "B2",
                "respondent": "G1",
                "price": 55,
                "proposal": "承接转化",
            },
        ],
    }
    for name, records in lines.items():
        (src / name).write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
        )
    report = _importer(store).import_paths([src])
    assert report.ok, [i.format() for i in report.issues]


def _records(store: Store) -> dict[str, Any]:
    """All imported content, references as external ids, without ids or timestamps."""
    with store.factory() as s:
        orgs = {o.id: o.external_id for o in s.scalars(select(Organisation))}
        out: dict[str, Any] = {
            "orgs": sorted(
                (
                    o.external_id,
                    o.name,
                    o.kind,
                    o.credit_code,
                    o.province,
                    o.city,
                    o.in_region,
                    orgs.get(o.parent_id),
                    o.fields,
                    o.status,
                    o.content_hash,
                )
                for o in s.scalars(select(Organisation))
            ),
            "needs": sorted(
                (
                    n.external_id,
                    orgs[n.org_id],
                    n.title,
                    n.description,
                    n.field,
                    n.keywords,
                    n.budget,
                    n.deadline,
                    n.confidential,
                    n.status,
                    n.content_hash,
                )
                for n in s.scalars(select(Need))
            ),
            "caps": sorted(
                (
                    c.external_id,
                    orgs[c.org_id],
                    c.kind,
                    c.title,
                    c.description,
                    c.field,
                    c.keywords,
                    c.trl,
                    c.year,
                    c.status,
                    c.content_hash,
                )
                for c in s.scalars(select(Capability))
            ),
            "bounties": sorted(
                (
                    b.external_id,
                    b.kind,
                    orgs[b.poster_org_id],
                    b.need_id is not None,
                    b.capability_id is not None,
                    b.title,
                    b.description,
                    b.budget,
                    b.deadline,
                    b.status,
                )
                for b in s.scalars(select(Bounty))
            ),
            "bids": sorted(
                (
                    d.external_id,
                    d.bounty.external_id,
                    orgs[d.respondent_org_id],
                    d.members,
                    d.price,
                    d.proposal,
                )
                for d in s.scalars(select(Bid))
            ),
        }
        out["submitted"] = sorted(
            d.submitted_at.replace(tzinfo=None).isoformat()
            for d in s.scalars(select(Bid))
            if d.external_id == "D1"
        )
    return out


@pytest.mark.sqlite_only  # re-imports into a copy of the SQLite file
@pytest.mark.parametrize("fmt", ["jsonl", "xlsx", "csv"])
def test_export_round_trip(store: Store, tmp_path: Path, fmt: str) -> None:
    _seed(store, tmp_path)
    original = _records(store)
    assert original["submitted"] == ["2026-01-05T02:30:00"]
    out = tmp_path / "export" / ("all.xlsx" if fmt == "xlsx" else "")
    result = export_store(store.factory, out, fmt)  # type: ignore[arg-type]
    assert result["counts"] == {
        "organisations": 4,
        "needs": 2,
        "capabilities": 2,
        "bounties": 2,
        "bids": 2,
    }

    fresh_path = tmp_path / "fresh.sqlite3"
    shutil.copyfile(store.path, fresh_path)  # same schema ...
    from service.db import make_engine, make_session_factory

    engine = make_engine(f"sqlite:///{fresh_path}")
    with engine.begin() as conn:  # ... but empty
        for table in ("bids", "bounties", "capabilities", "needs", "organisations"):
            conn.exec_driver_sql(f"DELETE FROM {table}")
    fresh = Store(fresh_path, f"sqlite:///{fresh_path}", engine, make_session_factory(engine))
    report = _importer(fresh).import_paths(result["files"])
    assert report.ok, [i.format() for i in report.issues]
    assert _records(fresh) == original
    # Exporting again and re-importing into the same store changes nothing.
    again = _importer(fresh).import_paths(result["files"])
    assert again.totals()["created"] == again.totals()["updated"] == 0
    engine.dispose()


def test_xlsx_cells_are_neutralised_but_numbers_stay_numbers(store: Store, tmp_path: Path) -> None:
    _seed(store, tmp_path)
    with store.factory() as s:  # a negative number stored as a number
        s.scalars(select(Need).where(Need.external_id == "N2")).one().budget = -5.0
        s.commit()
    path = tmp_path / "out.xlsx"
    export_store(store.factory, path, "xlsx")
    wb = load_workbook(path)
    assert wb.sheetnames == ["单位", "技术需求", "成果", "揭榜榜单", "揭榜申报"]
    orgs = {row[0]: row for row in wb["单位"].iter_rows(min_row=2, values_only=True)}
    assert [c.value for c in wb["单位"][1]][:4] == [
        "单位编号",
        "单位名称",
        "单位类型",
        "统一社会信用代码",
    ]
    assert orgs["G1"][1] == "'=广西测试集团有限公司"
    assert orgs["G2"][1] == "'+柳州测试汽车有限公司"
    assert orgs["U1"][1] == "'@测试大学"
    assert orgs["C1"][1] == "测试大学科技公司"
    needs = {row[0]: row for row in wb["技术需求"].iter_rows(min_row=2, values_only=True)}
    assert needs["N1"][2] == "'-20℃低温启动" and needs["N2"][2] == "'+86 热线咨询需求"
    assert needs["N2"][6] == -5 and isinstance(needs["N2"][6], int | float)  # a number, not text
    assert needs["N1"][8] == "是"
    bids = {row[0]: row for row in wb["揭榜申报"].iter_rows(min_row=2, values_only=True)}
    assert bids["D1"][5] == "'-分三阶段实施" and bids["D1"][3] == "C1；G1"


def test_csv_export_is_utf8_bom_and_neutralised(store: Store, tmp_path: Path) -> None:
    _seed(store, tmp_path)
    export_store(store.factory, tmp_path / "csv", "csv")
    raw = (tmp_path / "csv" / "capabilities.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with (tmp_path / "csv" / "capabilities.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = {r["成果编号"]: r for r in csv.DictReader(fh)}
    assert rows["K1"]["成果简介"] == "'=1+1 is not a formula here"
    assert rows["K1"]["关键词"] == "deep learning；membrane"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("ok=1", "ok=1"),
        (-1.5, -1.5),
        (None, None),
        ("", ""),
    ],
)
def test_neutralise_cell(value: Any, expected: Any) -> None:
    assert neutralise_cell(value) == expected


def test_jsonl_export_is_plain_data(store: Store, tmp_path: Path) -> None:
    _seed(store, tmp_path)
    export_store(store.factory, tmp_path / "j", "jsonl")
    first = json.loads(
        (tmp_path / "j" / "organisations.jsonl").read_text(encoding="utf-8").splitlines()[0]
    )
    assert first["name"] == "=广西测试集团有限公司"  # JSON is not a spreadsheet: no quote
    assert first["fields"] == ["制糖", "机械"]


def test_xlsx_export_into_directory_and_row_limit(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import service.exporter

    _seed(store, tmp_path)
    result = export_store(store.factory, tmp_path / "newdir", "xlsx")
    assert result["files"] == [tmp_path / "newdir" / "duijie_export.xlsx"]
    assert result["files"][0].is_file()
    monkeypatch.setattr(service.exporter, "XLSX_MAX_ROWS", 3)
    with pytest.raises(ValueError, match="jsonl or csv"):
        export_store(store.factory, tmp_path / "big.xlsx", "xlsx")
    assert not (tmp_path / "big.xlsx").exists()


def test_importer_and_exporter_share_formats_not_each_other() -> None:
    """Both depend on service.formats; neither imports the other (no cycle)."""
    import ast

    root = Path(__file__).resolve().parents[2] / "service"

    def imports(path: Path) -> set[str]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        for n in ast.walk(tree):
            if isinstance(n, ast.Import):
                names.update(a.name for a in n.names)
        return names

    exporter = imports(root / "exporter.py")
    assert "service.formats" in exporter
    assert not {m for m in exporter if m.startswith(("service.importing", "service.importer"))}
    for path in (root / "importing").glob("*.py"):
        assert "service.exporter" not in imports(path), path.name
