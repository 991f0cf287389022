"""Staff shortlist page and XLSX export on a large seeded campaign.

Seeds a temporary SQLite store with ``--enterprises`` enterprises (one need each, with an
evidence snippet), ``--institutes`` institutes (one capability each) and a campaign of
``--k`` items per enterprise, then measures through the real app (``TestClient``): the first
shortlist page (200 rows), a field-filtered page, a decision POST, and the full XLSX export.

    python benchmarks/bench_staff_pages.py [--enterprises 5000] [--institutes 500] [--k 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from matcher.encoding import cap_key
from service import auth
from service.db import open_store
from service.main import create_app
from service.models import Campaign, Capability, Need, Organisation, ShortlistItem, User
from service.settings import load_settings

FIELDS = ("新材料", "装备制造", "生物医药", "轻工", "电子信息")


def seed(url: str, n_ent: int, n_inst: int, k: int) -> int:
    _engine, factory = open_store(url)
    with factory() as db:
        insts = [
            Organisation(
                external_id=f"I{i}", name=f"研究院{i:05d}", kind="institute", fields=[FIELDS[i % 5]]
            )
            for i in range(n_inst)
        ]
        ents = [
            Organisation(
                external_id=f"E{i}",
                name=f"企业{i:06d}有限公司",
                kind="enterprise",
                in_region=True,
                fields=[FIELDS[i % 5]],
            )
            for i in range(n_ent)
        ]
        db.add_all(insts + ents)
        db.flush()
        caps = [
            Capability(
                external_id=f"C{i}",
                org_id=o.id,
                kind="achievement",
                title=f"成果{i}",
                description=f"背景介绍。本成果实现了关键工艺{i}的突破。已完成中试。",
                field=FIELDS[i % 5],
            )
            for i, o in enumerate(insts)
        ]
        needs = [
            Need(
                external_id=f"N{i}",
                org_id=o.id,
                title=f"需求{i}",
                description=f"企业概况。希望解决工艺{i}的瓶颈问题。预算充足。",
                field=FIELDS[i % 5],
            )
            for i, o in enumerate(ents)
        ]
        db.add_all(caps + needs)
        db.add(User(username="bench", role="staff", password_hash=auth.hash_password("pw")))
        campaign = Campaign(name="bench", status="done", progress=1.0)
        db.add(campaign)
        db.flush()
        items = []
        for i, (e, n) in enumerate(zip(ents, needs, strict=True)):
            for r in range(k):
                j = (i * 7 + r) % n_inst
                items.append(
                    ShortlistItem(
                        campaign_id=campaign.id,
                        enterprise_id=e.id,
                        institute_id=insts[j].id,
                        need_id=n.id,
                        score=1.0 - r * 0.1,
                        rank=r + 1,
                        kind="assigned" if r == 0 else "alternate",
                        evidence={
                            "documents": [
                                {
                                    "doc_id": cap_key(f"C{j}"),
                                    "query_snippet": f"希望解决工艺{i}的瓶颈问题。",
                                    "doc_snippet": f"本成果实现了关键工艺{j}的突破。",
                                }
                            ],
                            "shared_keywords": ["工艺"],
                        },
                    )
                )
        db.add_all(items)
        db.commit()
        return campaign.id


def timed(fn, repeat: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--enterprises", type=int, default=5000)
    ap.add_argument("--institutes", type=int, default=500)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        t0 = time.perf_counter()
        cid = seed(url, args.enterprises, args.institutes, args.k)
        seed_s = time.perf_counter() - t0
        settings = load_settings(database_url=url, data_dir=tmp, secret_key="b" * 40)
        with TestClient(create_app(settings), follow_redirects=False) as c:
            page = c.get("/staff/login")
            token = re.search(r'name="csrf_token" value="([^"]*)"', page.text).group(1)  # type: ignore[union-attr]
            c.post(
                "/staff/login", data={"username": "bench", "password": "pw", "csrf_token": token}
            )
            base = f"/staff/campaigns/{cid}"
            first_s, r = timed(lambda: c.get(base), args.repeat)
            assert r.status_code == 200  # type: ignore[attr-defined]
            field_s, _ = timed(lambda: c.get(base, params={"field": "轻工"}), args.repeat)
            html = r.text  # type: ignore[attr-defined]
            m = re.search(r'id="item-(\d+)".*?name="csrf_token" value="([^"]*)"', html, re.S)
            assert m is not None
            t0 = time.perf_counter()
            d = c.post(
                f"{base}/items/{m.group(1)}",
                data={"csrf_token": m.group(2), "version": "1", "action": "approve"},
            )
            post_s = time.perf_counter() - t0
            assert d.status_code == 303, d.text
            t0 = time.perf_counter()
            x = c.get(f"{base}/export.xlsx")
            export_s = time.perf_counter() - t0
            assert x.status_code == 200
    n_items = args.enterprises * args.k
    print(
        f"staff pages: {n_items} items (seed {seed_s:.1f} s): first page {first_s * 1000:.0f} ms, "
        f"field filter {field_s * 1000:.0f} ms, approve POST+redirect {post_s * 1000:.0f} ms, "
        f"XLSX export {export_s:.2f} s ({len(x.content) / 1e6:.1f} MB)"
    )


if __name__ == "__main__":
    main()
