"""The demo data: committed files match the generator, ``duijie demo`` loads them, and the
loaded data has the shape the matching rules need (groups, regions, both bounty kinds)."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter, defaultdict
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import select

from service.cli import main
from service.db import make_engine, make_session_factory
from service.models import Bid, Bounty, Capability, Need, Organisation
from service.settings import get_settings
from service.validation import is_valid_credit_code

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "data" / "demo"


def _gen_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_demo", REPO / "scripts" / "gen_demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_demo"] = module
    spec.loader.exec_module(module)
    return module


def test_committed_demo_files_match_the_generator(tmp_path: Path) -> None:
    gen = _gen_demo()
    gen.write_dataset(gen.generate(7), tmp_path)
    for name in (
        "organisations.csv",
        "needs.csv",
        "capabilities.jsonl",
        "bounties.csv",
        "bids.csv",
    ):
        assert (tmp_path / name).read_bytes() == (DEMO / name).read_bytes(), name
    with pytest.raises(UnicodeDecodeError):
        (DEMO / "organisations.csv").read_text(encoding="utf-8")
    assert (DEMO / "needs.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert sum(p.stat().st_size for p in DEMO.iterdir()) < 3 * 2**20


@pytest.fixture
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo")


def _run_demo(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> str:
    monkeypatch.setenv("DUIJIE_DATA_DIR", str(data_dir))
    monkeypatch.delenv("DUIJIE_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        assert main(["demo"]) == 0
    finally:
        get_settings.cache_clear()
    return capsys.readouterr().out


def test_demo_loads_and_meets_the_counts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _run_demo(monkeypatch, tmp_path, capsys)
    assert "demo loaded" in out and "GB18030" in out
    engine = make_engine(f"sqlite:///{tmp_path / 'duijie.sqlite3'}")
    factory = make_session_factory(engine)
    gen = _gen_demo()
    with factory() as s:
        orgs = {o.id: o for o in s.scalars(select(Organisation))}
        ext = {o.external_id: o for o in orgs.values()}
        needs = list(s.scalars(select(Need)))
        caps = list(s.scalars(select(Capability)))
        bounties = list(s.scalars(select(Bounty)))
        bids = list(s.scalars(select(Bid)))

        kinds = Counter((o.kind, o.in_region) for o in orgs.values())
        assert kinds[("enterprise", True)] >= 150
        assert sum(n for (k, _r), n in kinds.items() if k in ("university", "institute")) >= 40
        assert kinds[("university", False)] + kinds[("institute", False)] >= 10
        assert len(caps) >= 600 and len(needs) >= 300
        assert {b.kind for b in bounties} == {"tackle", "transfer"} and len(bounties) >= 20
        assert all(any(d.bounty_id == b.id for d in bids) for b in bounties)
        assert all(is_valid_credit_code(o.credit_code) for o in orgs.values() if o.credit_code)
        assert all(orgs[n.org_id].kind == "enterprise" and orgs[n.org_id].in_region for n in needs)
        assert {n.field for n in needs} | {c.field for c in caps} <= set(gen.FIELDS)
        assert all(40 <= len(t.description) <= 600 for t in [*needs, *caps])
        english = sum(c.description.startswith("This paper") for c in caps)
        assert 0.05 <= english / len(caps) <= 0.15

        def chain(o: Organisation) -> list[str]:
            out = [o.external_id]
            while o.parent_id:
                o = orgs[o.parent_id]
                out.append(o.external_id)
            return out

        assert max(len(chain(o)) for o in orgs.values()) >= 3  # three levels at least once
        assert any(
            o.kind == "company" and o.parent_id and orgs[o.parent_id].kind == "university"
            for o in orgs.values()
        )

        def group(o: Organisation) -> set[str]:
            root = chain(o)[-1]
            return {x.external_id for x in orgs.values() if chain(x)[-1] == root}

        for b in bounties:
            poster = orgs[b.poster_org_id]
            if b.kind == "tackle":
                assert poster.kind == "enterprise" and poster.in_region and b.need_id
            else:
                assert poster.kind in ("university", "institute") and b.capability_id
        in_group = [
            d
            for d in bids
            if orgs[d.respondent_org_id].external_id in group(d.bounty.poster)
            and d.respondent_org_id != d.bounty.poster_org_id
        ]
        assert {d.bounty.kind for d in in_group} == {"tackle", "transfer"}
        assert any(d.members for d in bids)
        assert any(
            not orgs[d.respondent_org_id].in_region for d in bids if d.bounty.kind == "transfer"
        )
        for d in bids:
            budget = d.bounty.budget or 100
            assert 0.6 * budget <= d.price <= 1.2 * budget

        # Research organisations have coherent specialities: 1–3 fields hold most of their work.
        by_org: dict[int, Counter[str]] = defaultdict(Counter)
        for c in caps:
            if orgs[c.org_id].kind in ("university", "institute"):
                by_org[c.org_id][c.field or ""] += 1
        for counter in by_org.values():
            top = sum(n for _f, n in counter.most_common(3))
            assert top / sum(counter.values()) >= 0.7
        assert ext["ORG-E0001"].name.endswith("集团有限公司")
        _an_institute_can_apply_today(s, bounties, orgs)
    engine.dispose()

    again = _run_demo(monkeypatch, tmp_path, capsys)  # idempotent
    assert again.count("新增 0，更新 0，") == 5 and "拒绝 0" in again


def _an_institute_can_apply_today(
    s: Any, bounties: list[Bounty], orgs: dict[int, Organisation]
) -> None:
    """Loaded today, the demo's open bounties close in the future and take applications."""
    from datetime import date

    from service import applications, auth
    from service.models import User

    today = date.today()
    open_ = [b for b in bounties if b.status == "open"]
    assert len(open_) >= 20
    assert all(b.deadline is not None and b.deadline > today for b in open_)
    tackle = next(b for b in open_ if b.kind == "tackle")
    applicant = next(
        o
        for o in orgs.values()
        if o.kind == "university"
        and o.status == "active"
        and not applications.check_eligibility(
            s, bounty=tackle, applicant_ext=o.external_id, members=()
        )
        and not any(d.respondent_org_id == o.id for d in tackle.bids)
    )
    user = User(username="demo-inst", role="institute", org_id=applicant.id)
    s.add(user)
    s.flush()
    principal = auth.Principal(user_id=user.id, username=user.username, role="institute",
                               org_id=applicant.id)  # fmt: skip
    bid = applications.submit_application(
        s, applicant=principal, bounty_external_id=tackle.external_id,
        proposal="演示数据上的揭榜方案。", price="100",
    )  # fmt: skip
    assert bid.status == "submitted" and bid.bounty_id == tackle.id
    s.rollback()  # the demo stays as loaded (the idempotence check below)


def test_scale_generator_is_reproducible_and_importable(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("gen_scale", REPO / "benchmarks" / "gen_scale.py")
    assert spec is not None and spec.loader is not None
    gen_scale = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_scale)
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    counts = gen_scale.generate(a, capabilities=300, needs=120, seed=5)
    gen_scale.generate(b, capabilities=300, needs=120, seed=5)
    gen_scale.generate(c, capabilities=300, needs=120, seed=6)
    assert counts["capabilities"] == 300 and counts["needs"] == 120
    for name in ("organisations.csv", "needs.csv", "capabilities.jsonl"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / "needs.csv").read_bytes() != (c / "needs.csv").read_bytes()
    measured = gen_scale.import_files(a)
    assert measured["rows"] == sum(counts.values()) and measured["probe_failures"] == 0


def test_staged_demo_moves_open_closing_dates_to_the_load_date(tmp_path: Path) -> None:
    from datetime import date, timedelta

    from service.demo_dates import DEMO_BASE_DATE, staged_demo_dir

    today = date(2031, 7, 15)
    stage = staged_demo_dir(DEMO, tmp_path / "demo", today=today)
    offset = today - DEMO_BASE_DATE
    import csv

    def rows(path: Path) -> dict[str, dict[str, str]]:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return {r["榜单编号"]: r for r in csv.DictReader(fh)}

    before, after = rows(DEMO / "bounties.csv"), rows(stage / "bounties.csv")
    assert before.keys() == after.keys()
    moved = 0
    for ext, row in before.items():
        new = after[ext]
        assert {k: v for k, v in new.items() if k != "截止日期"} == {
            k: v for k, v in row.items() if k != "截止日期"
        }
        old_day, new_day = date.fromisoformat(row["截止日期"]), date.fromisoformat(new["截止日期"])
        if row["状态"] == "征集中":
            assert new_day == old_day + offset and new_day > today + timedelta(days=60)
            moved += 1
        else:  # awarded: history keeps its dates
            assert new_day == old_day
    assert moved >= 20
    others = {p.name for p in DEMO.iterdir() if p.is_file()} - {"bounties.csv"}
    assert {p.name for p in stage.iterdir() if p.is_symlink()} == others
    assert (DEMO / "bounties.csv").read_bytes() != (stage / "bounties.csv").read_bytes()
