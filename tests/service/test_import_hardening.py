"""Import under hostile or unusual input: malformed CSV, deep JSON, huge cells, oversized
sheets, formula text, control characters. Every failure ends in the report, never a traceback.
"""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update

from service.commands.data import format_report
from service.exporter import export_store
from service.formats import export_labels
from service.models import Need, Organisation
from tests.service.conftest import Store
from tests.service.test_import import (
    NEED_HEADER,
    NEEDS,
    ORG_HEADER,
    counts,
    orgs_csv,
    run,
    write_csv,
    write_jsonl,
    write_xlsx,
)

ORG_LINE = "{id},{name},企业,,广西,南宁,,制糖"


def _org_lines(*lines: str) -> str:
    return ",".join(ORG_HEADER) + "\n" + "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- malformed CSV


@pytest.mark.parametrize(
    "broken",
    [
        'B2,"坏引号企业,企业,,广西,南宁,,制糖',  # never closed: runs to the end of the file
        'B2,"坏引号企业,企业,,广西,南宁,,制糖"',  # closed at the end of its line...
    ],
)
def test_unclosed_quote_is_a_row_error_not_a_merged_row(
    store: Store, tmp_path: Path, broken: str
) -> None:
    path = tmp_path / "orgs.csv"
    text = _org_lines(
        ORG_LINE.format(id="B1", name="好企业一"),
        broken,
        ORG_LINE.format(id="B3", name="好企业三"),
        ORG_LINE.format(id="B4", name='"好企业四"'),
    )
    if broken.endswith('"'):  # ...a quote that opens later then swallows B3 into it
        text = text.replace('"坏引号企业', "坏引号企业").replace('制糖"\n', '"制糖\n', 1)
    path.write_text(text, encoding="utf-8")
    report = run(store, path)
    assert not report.ok and counts(store)["organisations"] == 0  # all-or-nothing
    [issue] = [i for i in report.issues if i.row is not None]
    assert issue.row == 3 and "引号" in issue.reason
    partial = run(store, path, partial=True)
    assert partial.files[0].tables[0].created == 3
    with store.factory() as s:
        assert set(s.scalars(select(Organisation.external_id))) == {"B1", "B3", "B4"}


def test_bad_quote_inside_a_row_names_the_row(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "orgs.csv"
    path.write_text(
        _org_lines(
            ORG_LINE.format(id="C1", name='"引号"后有字'), ORG_LINE.format(id="C2", name="好")
        ),
        encoding="utf-8",
    )
    report = run(store, path, partial=True)
    [issue] = report.issues
    assert issue.row == 2 and "引号" in issue.reason
    assert report.files[0].tables[0].created == 1


def test_multiline_cells_still_work(store: Store, tmp_path: Path) -> None:
    assert run(store, orgs_csv(tmp_path)).ok
    rows = [[*NEEDS[0][:3], "第一行\n第二行", *NEEDS[0][4:]], NEEDS[1]]
    report = run(store, write_csv(tmp_path / "needs.csv", NEED_HEADER, rows))
    assert report.ok, report.issues
    with store.factory() as s:
        assert s.scalars(select(Need.description).where(Need.external_id == "N1")).one() == (
            "第一行\n第二行"
        )


# --------------------------------------------------------------------------- JSON, cells, rows


def test_deep_json_nesting_is_a_row_error(store: Store, tmp_path: Path) -> None:
    assert run(store, orgs_csv(tmp_path)).ok
    path = tmp_path / "needs.jsonl"
    deep = '{"external_id": "J0", "org": "G2", "title": ' + "[" * 100_000 + "]" * 100_000 + "}"
    good = '{"external_id": "J1", "org": "G2", "title": "正常", "confidential": false}'
    obj = '{"external_id": "J2", "org": "G2", "title": {"a": 1}, "confidential": false}'
    path.write_text("\n".join([deep, good, obj]) + "\n", encoding="utf-8")
    report = run(store, path, partial=True)
    got = {i.row: i.reason for i in report.issues}
    assert set(got) == {1, 3} and "嵌套" in got[1] and "JSON 对象" in got[3]
    assert report.files[0].tables[0].created == 1


def test_huge_cell_is_a_clear_row_error(store: Store, tmp_path: Path) -> None:
    assert run(store, orgs_csv(tmp_path)).ok
    rows = [[*NEEDS[0][:3], "长" * 200_000, *NEEDS[0][4:]], NEEDS[1]]
    path = write_csv(tmp_path / "needs.csv", NEED_HEADER, rows)
    report = run(store, path, partial=True)
    [issue] = report.issues
    assert issue.row == 2 and "单元格过长" in issue.reason and "200000字" in issue.reason
    assert "写入数据库失败" not in issue.reason
    assert report.files[0].tables[0].created == 1
    # The rejected-rows report keeps a shortened value, not 200k characters.
    n = report.write_rejected_csv(tmp_path / "rejected.csv")
    assert n == 1 and (tmp_path / "rejected.csv").stat().st_size < 5_000


def _declare_rows(path: Path, ref: str) -> None:
    """Rewrite the <dimension> of the first sheet of ``path`` (a tiny file, a huge claim)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = data.decode()
                start = text.index("<dimension ref=")
                end = text.index("/>", start)
                data = (text[:start] + f'<dimension ref="{ref}"' + text[end:]).encode()
            dst.writestr(item, data)
    path.write_bytes(buf.getvalue())


def test_xlsx_declaring_millions_of_rows_is_refused_before_reading(
    store: Store, tmp_path: Path
) -> None:
    path = write_xlsx(tmp_path / "o.xlsx", {"单位": (ORG_HEADER, [["X1", "企业", "企业"]])})
    _declare_rows(path, "A1:H3000000")
    started = time.perf_counter()
    report = run(store, path)
    assert time.perf_counter() - started < 5
    [issue] = report.issues
    assert "3000000 行" in issue.reason and issue.row is None
    assert counts(store)["organisations"] == 0


def test_row_limit_stops_reading_with_a_clear_message(store: Store, tmp_path: Path) -> None:
    rows = [[f"R{i}", f"企业{i}", "企业", "", "广西", "南宁", "", ""] for i in range(30)]
    for path in (
        write_csv(tmp_path / "o.csv", ORG_HEADER, rows),
        write_xlsx(tmp_path / "o.xlsx", {"Sheet": (ORG_HEADER, rows)}),
    ):
        report = run(store, path, max_rows=10, partial=True)
        [issue] = report.issues
        assert "超过 10 行的上限" in issue.reason and "--max-rows" in issue.reason
        assert counts(store)["organisations"] == 0  # a table over the limit is not imported
    assert run(store, tmp_path / "o.csv", max_rows=30).ok


# --------------------------------------------------------------------------- formula text


TRICKY = [
    "=1+1",
    "'=already quoted",
    "''=two quotes",
    "+86 热线",
    "-20℃",
    "@x",
    "\t=tab",
    " =space",
    "\n=newline",
    "a'b",
    "'plain quote",
]


def test_user_spreadsheet_text_is_not_rewritten(store: Store, tmp_path: Path) -> None:
    """A user's own sheet (not our export header): a leading ' is data, kept as it is."""
    rows = [[f"T{i}", name, "企业", "", "广西", "南宁", "", ""] for i, name in enumerate(TRICKY)]
    assert run(store, write_csv(tmp_path / "o.csv", ORG_HEADER, rows)).ok
    with store.factory() as s:
        got = {r[0]: r[1] for r in s.execute(select(Organisation.external_id, Organisation.name))}
    assert got == {f"T{i}": name for i, name in enumerate(TRICKY)}


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "jsonl"])
def test_export_import_round_trip_is_exact(store: Store, tmp_path: Path, fmt: str) -> None:
    with store.factory() as s:
        for i, name in enumerate(TRICKY):
            s.add(Organisation(external_id=f"T{i}", name=name, kind="enterprise"))
        s.commit()
    out = tmp_path / ("x.xlsx" if fmt == "xlsx" else "x")
    result = export_store(store.factory, out, fmt)  # type: ignore[arg-type]
    if fmt == "xlsx":  # what Excel shows: the quote prefix, never a formula cell
        wb = load_workbook(result["files"][0])
        assert all(c.data_type != "f" for row in wb["单位"].iter_rows() for c in row)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    other = _fresh_store(fresh)
    report = run(other, *result["files"])
    assert report.ok, report.issues
    with other.factory() as s:
        got = {r[0]: r[1] for r in s.execute(select(Organisation.external_id, Organisation.name))}
    assert got == {f"T{i}": name for i, name in enumerate(TRICKY)}


def _fresh_store(path: Path) -> Store:
    from service.db import make_engine, make_session_factory, migrate

    url = f"sqlite:///{path / 'db.sqlite3'}"
    migrate(url)
    engine = make_engine(url)
    return Store(path=path, url=url, engine=engine, factory=make_session_factory(engine))


# --------------------------------------------------------------------------- control chars


# SQLite only: the legacy row written around the ORM holds NUL, which PostgreSQL never stores.
@pytest.mark.sqlite_only
def test_control_characters_never_reach_the_store_and_export_survives_legacy_rows(
    store: Store, tmp_path: Path
) -> None:
    assert run(store, orgs_csv(tmp_path)).ok
    with store.factory() as s:  # a write that is not an import (as the API does)
        org = s.scalars(select(Organisation).where(Organisation.external_id == "G2")).one()
        s.add(Need(external_id="Z1", org_id=org.id, title="标\x00题\x07", keywords=["k\x1b"]))
        s.commit()
        need = s.scalars(select(Need).where(Need.external_id == "Z1")).one()
        assert need.title == "标题" and need.keywords == ["k"]
        # A legacy row written around the ORM still holds them.
        s.execute(update(Need).values(title="旧\x00数据\x0b", description="\x1fx"))
        s.commit()
    result = export_store(store.factory, tmp_path / "x.xlsx", "xlsx")
    ws = load_workbook(result["files"][0])["技术需求"]
    assert [r[2] for r in ws.iter_rows(min_row=2, values_only=True)] == ["旧数据"]
    export_store(store.factory, tmp_path / "j", "jsonl")
    assert "\\u0000" not in (tmp_path / "j" / "needs.jsonl").read_text(encoding="utf-8")


def test_control_characters_in_import_cells_are_removed(store: Store, tmp_path: Path) -> None:
    rows = [["K1", "企\x00业\u202e名", "企业", "", "广西", "南宁", "", "制\x07糖"]]
    assert run(store, write_csv(tmp_path / "o.csv", ORG_HEADER, rows)).ok
    with store.factory() as s:
        org = s.scalars(select(Organisation)).one()
    assert org.name == "企业名" and org.fields == ["制糖"]


def test_export_header_table_restores_quotes_exactly(store: Store, tmp_path: Path) -> None:
    rows = [["Q1", "''=x", "企业", "", "广西", "南宁", "", "", "正常"]]
    assert run(store, write_csv(tmp_path / "o.csv", export_labels("organisations"), rows)).ok
    with store.factory() as s:
        assert s.scalars(select(Organisation.name)).one() == "'=x"


def test_summary_never_shows_a_traceback(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "needs.jsonl"
    write_jsonl(path, [{"external_id": "X", "org": "nobody", "title": "t", "confidential": 1}])
    lines = format_report(run(store, path))
    assert not any("Traceback" in line for line in lines)
    assert any("不存在" in line for line in lines)
