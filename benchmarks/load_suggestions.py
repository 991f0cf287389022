"""Load test of ``POST /api/v1/suggestions`` on the demo data, over loopback only.

Prepares (or reuses) a data directory with the demo store and an index build, creates one
API key per demo enterprise (each asks only for its own needs), starts ``uvicorn`` in a
subprocess on 127.0.0.1, then runs ``--clients`` concurrent clients (httpx + asyncio) for
``--seconds``. With ``--reindex`` an admin edits a capability and triggers re-indexes during
the run, so the service switches builds under load; the summary reports how many switches
were observed and the error count (must be 0).

    python benchmarks/load_suggestions.py [--seconds 60] [--clients 16] [--reindex]
        [--data-dir var/bench-load] [--port 8765]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DUIJIE = [sys.executable, "-m", "service.cli"]


def env_for(data_dir: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("DUIJIE_DATABASE_URL", "DUIJIE_INDEX_DIR")
    }
    env.update(DUIJIE_DATA_DIR=str(data_dir), DUIJIE_SECRET_KEY="bench-load-secret-0123456789")
    return env


def prepare(data_dir: Path, fresh: bool) -> None:
    """Demo store + index build in ``data_dir`` (skipped when already there)."""
    if fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    env = env_for(data_dir)
    if not (data_dir / "duijie.sqlite3").exists():
        subprocess.run([*DUIJIE, "demo"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    if not (data_dir / "index").exists() or not any((data_dir / "index").iterdir()):
        t0 = time.perf_counter()
        subprocess.run(
            [*DUIJIE, "reindex", "--no-progress"],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        print(f"[prepare] initial index build in {time.perf_counter() - t0:.1f}s")


def make_keys(data_dir: Path) -> tuple[list[tuple[str, list[str]]], str, str]:
    """One fresh key per demo enterprise with open needs, plus admin and staff keys."""
    os.environ.clear()
    os.environ.update(env_for(data_dir))
    from sqlalchemy import select, update

    from service import crud
    from service.db import open_store, session_scope
    from service.models import ApiKey, Need, Organisation, User
    from service.settings import load_settings

    settings = load_settings()
    _engine, factory = open_store(settings.resolved_database_url)
    clients: list[tuple[str, list[str]]] = []
    with session_scope(factory) as s:
        s.execute(
            update(ApiKey)
            .where(ApiKey.user_id.in_(select(User.id).where(User.username.like("bench-%"))))
            .values(revoked=True)
        )
        rows = s.execute(
            select(Organisation.external_id, Need.external_id)
            .join(Need, Need.org_id == Organisation.id)
            .where(Organisation.kind == "enterprise", Need.status == "open")
            .order_by(Organisation.id, Need.id)
        ).all()
        needs: dict[str, list[str]] = {}
        for org, need in rows:
            needs.setdefault(str(org), []).append(str(need))
        for org, org_needs in needs.items():
            name = f"bench-{org}"[:64]
            user = s.scalar(select(User).where(User.username == name))
            if user is None:
                user, key = crud.create_user(
                    s, username=name, role="enterprise", org_external_id=org
                )
            else:
                user.active = True
                key = crud.issue_api_key(s, user=user)
            assert key is not None
            clients.append((key, org_needs))
        keys = {}
        for role in ("admin", "staff"):
            name = f"bench-{role}"
            user = s.scalar(select(User).where(User.username == name))
            if user is None:
                user, _ = crud.create_user(s, username=name, role=role, with_api_key=False)
            keys[role] = crud.issue_api_key(s, user=user)
    return clients, keys["admin"], keys["staff"]


def start_server(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "service.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env_for(data_dir),
        stdout=subprocess.DEVNULL,
        stderr=open(  # noqa: SIM115
            data_dir / "server.log", "wb"
        ),
    )


async def wait_ready(base: str, key: str, need: str, timeout: float = 300) -> float:
    """Wait for /healthz, then for the first suggestion (loads model + index)."""
    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=120) as c:
        while True:
            try:
                if (await c.get("/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError("server did not start")
            await asyncio.sleep(0.2)
        while True:
            r = await c.post(
                "/api/v1/suggestions",
                json={"need_id": need, "k": 10},
                headers={"Authorization": f"Bearer {key}"},
            )
            if r.status_code == 200:
                return time.perf_counter() - t0
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"first suggestion failed: {r.status_code} {r.text[:200]}")
            await asyncio.sleep(0.5)


async def client_loop(
    base: str,
    key: str,
    needs: list[str],
    until: float,
    seed: int,
    lat: list[float],
    errors: list[str],
    target: str = "suggestions",
) -> None:
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, timeout=180, headers=headers) as c:
        while time.perf_counter() < until:
            t0 = time.perf_counter()
            try:
                if target == "needs":  # API + auth + database only (no recommender)
                    r = await c.get("/api/v1/needs", params={"limit": 20})
                else:
                    body = {"need_id": rng.choice(needs), "k": 10}
                    r = await c.post("/api/v1/suggestions", json=body)
                ok = r.status_code == 200
                if not ok:
                    errors.append(f"{r.status_code} {r.text[:120]}")
            except httpx.HTTPError as exc:
                errors.append(repr(exc))
                ok = False
            if ok:
                lat.append(time.perf_counter() - t0)


async def reindexer(
    base: str,
    admin_key: str,
    staff_key: str,
    start: float,
    until: float,
    every: float,
    log: list[str],
) -> None:
    """Edit a capability and trigger a re-index every ``every`` seconds; record switches."""
    admin = {"Authorization": f"Bearer {admin_key}"}
    staff = {"Authorization": f"Bearer {staff_key}"}
    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        caps = (await c.get("/api/v1/capabilities", params={"limit": 5}, headers=staff)).json()
        cap = caps["items"][0]
        seen = (
            (await c.get("/api/v1/index/status", headers=staff))
            .json()["detail"]
            .get("loaded_build")
        )
        log.append(f"start build {seen}")
        n = 0
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        while time.perf_counter() < until - 5:
            n += 1
            desc = cap["description"] + f"(更新{n})"
            await c.patch(
                f"/api/v1/capabilities/{cap['external_id']}",
                json={"description": desc},
                headers=staff,
            )
            r = await c.post("/api/v1/index/reindex", headers=admin)
            log.append(f"t={time.perf_counter() - start:.1f}s reindex -> {r.status_code}")
            t_next = time.perf_counter() + every
            while time.perf_counter() < min(t_next, until):
                st = (await c.get("/api/v1/index/status", headers=staff)).json()
                loaded = st["detail"].get("loaded_build")
                if loaded != seen:
                    log.append(f"t={time.perf_counter() - start:.1f}s switched {seen} -> {loaded}")
                    seen = loaded
                await asyncio.sleep(0.5)


async def run(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    prepare(data_dir, args.fresh)
    clients, admin_key, staff_key = make_keys(data_dir)
    base = f"http://127.0.0.1:{args.port}"
    server = start_server(data_dir, args.port)
    try:
        warm = await wait_ready(base, clients[0][0], clients[0][1][0])
        print(
            f"[setup] {len(clients)} enterprise keys; server ready + first suggestion in "
            f"{warm:.1f}s"
        )
        lat: list[float] = []
        errors: list[str] = []
        log: list[str] = []
        t0 = time.perf_counter()
        until = t0 + args.seconds
        tasks = [
            client_loop(base, *clients[i % len(clients)], until, i, lat, errors, args.target)
            for i in range(args.clients)
        ]
        if args.reindex:
            tasks.append(
                reindexer(base, admin_key, staff_key, t0 + 5, until, args.reindex_every, log)
            )
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    for line in log:
        print(f"[reindex] {line}")
    for e in sorted(set(errors))[:10]:
        print(f"[error] {e}")
    n = len(lat)
    q = statistics.quantiles(lat, n=100) if n >= 2 else [float("nan")] * 99
    switches = sum(1 for line in log if "switched" in line)
    print(
        f"load_suggestions: {args.target}, {args.clients} clients x {elapsed:.0f}s"
        f"{' with re-index' if args.reindex else ''}: {n} ok requests, {n / elapsed:.1f} req/s, "
        f"p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms, errors {len(errors)}"
        + (f", build switches {switches}" if args.reindex else "")
    )
    return 0 if not errors else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--reindex", action="store_true", help="switch index builds during the run")
    p.add_argument("--reindex-every", type=float, default=20.0)
    p.add_argument("--data-dir", default=str(ROOT / "var" / "bench-load"))
    p.add_argument("--fresh", action="store_true", help="rebuild the data directory")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument(
        "--target",
        choices=("suggestions", "needs"),
        default="suggestions",
        help="needs = GET /api/v1/needs: the API/auth/DB overhead without the model",
    )
    args = p.parse_args()
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
