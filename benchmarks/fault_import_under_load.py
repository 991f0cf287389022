"""Fault benchmark: a 100k-row import against a live server while staff decide and log in.

Prepares a temporary store with the demo data, a finished campaign of shortlist items to
decide on, and 16 staff accounts (password + API key each); starts ``uvicorn`` on loopback
(``duijie serve``) on that store; then runs ``duijie import`` of ~100k generated rows
(``benchmarks/gen_scale.py``) against the same store while 16 clients loop: read a random
item, post a decision quoting its version, and every few rounds log in with a password.

Asserts: no 5xx other than 503 (every 503 carries ``Retry-After``), no connection errors or
timeouts, every decision either applied (200, and its audit entry exists afterwards) or
refused with 409 (version conflict) or 503 (store busy); the import itself succeeds. Prints
one summary line::

    python benchmarks/fault_import_under_load.py [--rows 100000] [--clients 16] [--port 8766]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
DUIJIE = [sys.executable, "-m", "service.cli"]
PASSWORD = "fault-bench-password-1"
SECRET = "fault-benchmark-secret-0123456789"


def env_for(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUIJIE_")}
    env.update(DUIJIE_DATA_DIR=str(data_dir), DUIJIE_SECRET_KEY=SECRET, PYTHONPATH=str(ROOT))
    return env


def prepare(data_dir: Path, clients: int, items: int) -> dict[str, Any]:
    """Demo store, a done campaign with ``items`` pending shortlist items, staff accounts."""
    subprocess.run(
        [*DUIJIE, "demo"], cwd=ROOT, env=env_for(data_dir), check=True, stdout=subprocess.DEVNULL
    )
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import select

    from service import crud
    from service.db import open_store, session_scope
    from service.models import Campaign, Organisation, ShortlistItem

    engine, factory = open_store(f"sqlite:///{data_dir / 'duijie.sqlite3'}")
    staff: list[tuple[str, str]] = []
    with session_scope(factory) as s:
        ents = s.scalars(select(Organisation.id).where(Organisation.kind == "enterprise")).all()
        insts = s.scalars(
            select(Organisation.id).where(Organisation.kind.in_(("university", "institute")))
        ).all()
        camp = Campaign(name="故障测试活动", params={"k": 1}, status="done", progress=1.0)
        s.add(camp)
        s.flush()
        rng = random.Random(0)
        rows = [
            ShortlistItem(
                campaign_id=camp.id,
                enterprise_id=ents[i % len(ents)],
                institute_id=rng.choice(insts),
                score=rng.random(),
            )
            for i in range(items)
        ]
        s.add_all(rows)
        s.flush()
        item_ids = [r.id for r in rows]
        for i in range(clients):
            user, key = crud.create_user(
                s, username=f"fault-staff-{i}", role="staff", password=PASSWORD
            )
            assert key is not None
            staff.append((user.username, key))
    engine.dispose()
    return {"items": item_ids, "staff": staff}


def generate(out: Path, rows: int) -> None:
    needs = rows // 5
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "gen_scale.py"),
            "--capabilities",
            str(rows - needs),
            "--needs",
            str(needs),
            "--out",
            str(out),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


class Tally:
    def __init__(self) -> None:
        self.decisions: Counter[int] = Counter()
        self.logins: Counter[int] = Counter()
        self.reads: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.no_retry_after = 0
        self.latencies: list[float] = []
        self.applied: list[tuple[int, int]] = []  # (item, version it was decided on)

    def note(self, kind: Counter[int], r: httpx.Response, t0: float) -> None:
        self.latencies.append(time.perf_counter() - t0)
        kind[r.status_code] += 1
        if r.status_code == 503 and "retry-after" not in r.headers:
            self.no_retry_after += 1


async def client_loop(
    base: str, username: str, key: str, items: list[int], stop: asyncio.Event, tally: Tally
) -> None:
    rng = random.Random(username)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, timeout=30.0) as http:
        n = 0
        while not stop.is_set():
            n += 1
            item = rng.choice(items)
            try:
                t0 = time.perf_counter()
                r = await http.get(f"/api/v1/shortlists/{item}", headers=headers)
                tally.note(tally.reads, r, t0)
                if r.status_code == 200:
                    version = r.json()["version"]
                    action = rng.choice(("approve", "reject", "note"))
                    body: dict[str, Any] = {"action": action, "version": version}
                    if action == "note":
                        body["note"] = f"压力测试 {n}"
                    t0 = time.perf_counter()
                    r = await http.post(
                        f"/api/v1/shortlists/{item}/decision", json=body, headers=headers
                    )
                    tally.note(tally.decisions, r, t0)
                    if r.status_code == 200:
                        tally.applied.append((item, version))
                if n % 4 == 0:
                    t0 = time.perf_counter()
                    r = await http.post(
                        "/api/v1/auth/login", json={"username": username, "password": PASSWORD}
                    )
                    tally.note(tally.logins, r, t0)
            except httpx.HTTPError as exc:
                tally.errors[type(exc).__name__] += 1
                await asyncio.sleep(0.2)


def verify_applied(data_dir: Path, applied: list[tuple[int, int]]) -> int:
    """How many 200-answered decisions have no audit entry (must be 0)."""
    from sqlalchemy import select

    from service.db import open_store
    from service.models import AuditLog

    engine, factory = open_store(f"sqlite:///{data_dir / 'duijie.sqlite3'}", upgrade=False)
    with factory() as s:
        seen = {
            (int(e), int((d or {}).get("from_version", -1)))
            for e, d in s.execute(
                select(AuditLog.entity_id, AuditLog.detail).where(
                    AuditLog.entity == "shortlist_item"
                )
            )
        }
    engine.dispose()
    return sum(1 for a in applied if a not in seen)


async def run_load(args: argparse.Namespace, data_dir: Path, world: dict[str, Any]) -> int:
    base = f"http://127.0.0.1:{args.port}"
    env = env_for(data_dir)
    server = subprocess.Popen(
        [*DUIJIE, "serve", "--port", str(args.port), "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(data_dir / "server.log", "wb"),  # noqa: SIM115 - closed with the process
        start_new_session=True,
    )
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5.0) as http:
            for _ in range(600):
                try:
                    if (await http.get("/healthz")).status_code in (200, 503):
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        stop = asyncio.Event()
        tally = Tally()
        loops = [
            asyncio.create_task(client_loop(base, u, k, world["items"], stop, tally))
            for u, k in world["staff"]
        ]
        await asyncio.sleep(2.0)  # traffic first, then the import starts
        t0 = time.perf_counter()
        files = [
            data_dir / "gen" / n for n in ("organisations.csv", "needs.csv", "capabilities.jsonl")
        ]
        importer = await asyncio.create_subprocess_exec(
            *DUIJIE,
            "import",
            *map(str, files),
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await importer.communicate()
        import_s = time.perf_counter() - t0
        await asyncio.sleep(2.0)
        stop.set()
        await asyncio.gather(*loops)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    missing = verify_applied(data_dir, tally.applied)
    every = tally.decisions + tally.logins + tally.reads
    bad = {c: n for c, n in every.items() if c >= 500 and c != 503}
    decision_bad = {c: n for c, n in tally.decisions.items() if c not in (200, 409, 503)}
    lat = sorted(tally.latencies)
    p99 = lat[int(0.99 * (len(lat) - 1))] if lat else float("nan")
    print(
        f"fault_import_under_load: import {args.rows} rows exit {importer.returncode} in "
        f"{import_s:.1f}s; {sum(every.values())} requests from {args.clients} clients: "
        f"decisions {dict(sorted(tally.decisions.items()))}, logins "
        f"{dict(sorted(tally.logins.items()))}, reads {dict(sorted(tally.reads.items()))}; "
        f"5xx other than 503: {sum(bad.values())}, 503 without Retry-After: "
        f"{tally.no_retry_after}, connection errors: {sum(tally.errors.values())}, "
        f"applied but not recorded: {missing}; latency p50 "
        f"{statistics.median(lat) * 1000:.0f} ms / p99 {p99 * 1000:.0f} ms / max "
        f"{max(lat) * 1000:.0f} ms"
    )
    ok = (
        importer.returncode == 0
        and not bad
        and not decision_bad
        and not tally.no_retry_after
        and not tally.errors
        and missing == 0
        and tally.decisions.get(200, 0) > 0
    )
    if importer.returncode != 0:
        sys.stderr.write(out.decode("utf-8", "replace")[-2000:])
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="needs + capabilities")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--items", type=int, default=400, help="shortlist items to decide on")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--data-dir", type=Path, help="default: a temporary directory")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="duijie-fault-") as tmp:
        data_dir = args.data_dir or Path(tmp)
        data_dir.mkdir(parents=True, exist_ok=True)
        world = prepare(data_dir, args.clients, args.items)
        generate(data_dir / "gen", args.rows)
        return asyncio.run(run_load(args, data_dir, world))


if __name__ == "__main__":
    sys.exit(main())
