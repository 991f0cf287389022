"""Imports and the store's write lock: short batches, serialised imports, all-or-nothing
through a failure in the middle of writing (real SQLite files, real threads).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import OperationalError

import service.importing.write
from service.db import make_engine, make_session_factory
from service.importing import Importer
from service.models import Need, Organisation
from tests.service.conftest import Store
from tests.service.test_import import (
    NEED_HEADER,
    ORG_HEADER,
    counts,
    orgs_csv,
    run,
    write_csv,
)


def _orgs(tmp_path: Path, name: str, ids: range) -> Path:
    rows = [[f"P{i}", f"并发企业{i}", "企业", "", "广西", "南宁", "", "制糖"] for i in ids]
    return write_csv(tmp_path / name, ORG_HEADER, rows)


def _needs(tmp_path: Path, name: str, ids: range) -> Path:
    rows = [[f"Q{i}", f"P{i}", f"需求{i}", "", "制糖", "", "", "", ""] for i in ids]
    return write_csv(tmp_path / name, NEED_HEADER, rows)


def test_fifty_concurrent_overlapping_imports(store: Store, tmp_path: Path) -> None:
    files = []
    for k in range(5):  # overlapping id ranges
        ids = range(k * 4, k * 4 + 8)
        files.append((_orgs(tmp_path, f"o{k}.csv", ids), _needs(tmp_path, f"n{k}.csv", ids)))
    reports: list[Any] = []
    errors: list[BaseException] = []

    def one(i: int) -> None:
        engine = make_engine(store.url)  # each "process" has its own engine
        try:
            reports.append(
                Importer(make_session_factory(engine), progress=_quiet).import_paths(
                    list(files[i % len(files)])
                )
            )
        except BaseException as exc:  # noqa: BLE001 - the test reports any crash
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert len(reports) == 50 and all(r.ok for r in reports), [r.issues for r in reports]
    assert counts(store)["organisations"] == 24 and counts(store)["needs"] == 24


def _quiet(items: Iterable[Any], _desc: str, total: int | None = None) -> Iterable[Any]:
    return items


def test_batches_leave_the_write_lock_free_between_them(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a big file is being written, another writer gets in between two batches."""
    assert run(store, orgs_csv(tmp_path)).ok
    monkeypatch.setattr(service.importing.write, "BATCH_SIZE", 5)
    other = make_engine(store.url, lock_timeout_s=0.2)
    wrote: list[int] = []

    def progress(items: Iterable[Any], desc: str, total: int | None = None) -> Iterator[Any]:
        for n, item in enumerate(items):
            if desc.startswith("写入") and n == 12:  # two batches committed, third open
                with other.begin() as conn:  # fails with "database is locked" if held
                    conn.execute(
                        update(Organisation)
                        .where(Organisation.external_id == "G1")
                        .values(city="柳州")
                    )
                wrote.append(n)
            yield item

    importer = Importer(store.factory, progress=progress)
    report = importer.import_paths([_orgs(tmp_path, "big.csv", range(40))])
    other.dispose()
    assert report.ok and wrote == [12] and counts(store)["organisations"] == 47


def test_failure_mid_write_reverts_the_committed_batches(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(store, _orgs(tmp_path, "first.csv", range(10))).ok
    with store.factory() as s:
        before = {o.external_id: (o.name, o.updated_at) for o in s.scalars(select(Organisation))}
    monkeypatch.setattr(service.importing.write, "BATCH_SIZE", 4)
    real = service.importing.write.upsert
    calls = {"n": 0}

    def failing(*args: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 4:  # three batches (12 rows) are committed by then
            raise OperationalError("INSERT ...", {}, Exception("disk I/O error"))
        return real(*args, **kw)

    monkeypatch.setattr(service.importing.write, "upsert", failing)
    rows = [[f"P{i}", f"改名企业{i}", "企业", "", "广西", "南宁", "", ""] for i in range(20)]
    report = run(store, write_csv(tmp_path / "second.csv", ORG_HEADER, rows))
    [issue] = report.issues
    assert (
        "写入数据库失败" in issue.reason and "已撤销" in issue.reason and "disk I/O" in issue.reason
    )
    assert not report.files[0].written and report.files[0].tables[0].created == 0
    with store.factory() as s:  # the 10 updated rows are back, the created ones gone
        after = {o.external_id: (o.name, o.updated_at) for o in s.scalars(select(Organisation))}
    assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in before.items()}


def test_concurrent_import_waits_for_the_lock(store: Store, tmp_path: Path) -> None:
    inside = threading.Event()
    release = threading.Event()

    def slow(items: Iterable[Any], desc: str, total: int | None = None) -> Iterator[Any]:
        inside.set()
        release.wait(10)
        yield from items

    first = threading.Thread(
        target=lambda: Importer(store.factory, progress=slow).import_paths([orgs_csv(tmp_path)])
    )
    first.start()
    assert inside.wait(10)
    waiting = Importer(store.factory, progress=_quiet, lock_timeout=0.3)
    report = waiting.import_paths([_orgs(tmp_path, "x.csv", range(3))])
    assert "另一个导入正在进行" in report.issues[0].reason and counts(store)["organisations"] == 0
    release.set()
    first.join(10)
    assert counts(store)["organisations"] == 7
    assert Importer(store.factory, progress=_quiet).import_paths([tmp_path / "x.csv"]).ok


@pytest.mark.sqlite_only  # holds SQLite's database-wide write lock (BEGIN IMMEDIATE)
def test_dry_run_takes_no_write_lock(store: Store, tmp_path: Path) -> None:
    with store.engine.connect() as conn:  # hold SQLite's write lock for the whole dry run
        conn.execute(text("BEGIN IMMEDIATE"))
        report = run(store, orgs_csv(tmp_path), _needs(tmp_path, "n.csv", range(0)), dry_run=True)
        conn.execute(text("ROLLBACK"))
    assert report.ok and report.files[0].tables[0].created == 7
    with store.factory() as s:
        assert s.scalars(select(Need)).first() is None


def test_partly_written_file_is_completed_by_running_the_import_again(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If even the revert fails (or the process dies mid-write), re-running completes it."""
    import service.importing.engine

    monkeypatch.setattr(service.importing.write, "BATCH_SIZE", 4)
    real = service.importing.write.upsert
    calls = {"n": 0}

    def failing(*args: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OperationalError("INSERT ...", {}, Exception("disk full"))
        return real(*args, **kw)

    def no_undo(*_a: Any, **_k: Any) -> int:
        raise OperationalError("DELETE ...", {}, Exception("disk full"))

    monkeypatch.setattr(service.importing.write, "upsert", failing)
    monkeypatch.setattr(service.importing.engine, "undo", no_undo)
    path = _orgs(tmp_path, "o.csv", range(20))
    report = run(store, path)
    assert "重新运行同一导入即可补全" in report.issues[0].reason
    assert counts(store)["organisations"] == 8  # two batches stayed
    monkeypatch.setattr(service.importing.write, "upsert", real)
    again = run(store, path)
    assert again.ok and again.files[0].tables[0].created == 12
    assert again.files[0].tables[0].unchanged == 8 and counts(store)["organisations"] == 20
