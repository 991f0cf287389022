"""Shared builders for the API tests (owned by the API tests; not a conftest so it does not
collide with the data engineer's fixtures): a migrated SQLite store with two enterprises, a
university and an institute, users of every role (institute users ``inst_a`` of UNI-1 and
``inst_b`` of INST-1), and a fake recommender handle."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from matcher.errors import IndexNotReady, UnknownEntity
from matcher.features import FEATURE_NAMES, OrgMatch, Query, Scored
from matcher.matrices import PairMatrix
from matcher.types import (
    BountyInfo,
    Document,
    Evidence,
    Exclusion,
    OrgInfo,
    RankedOrgs,
    Suggestion,
)
from service import crud
from service.db import open_store, session_scope
from service.models import (
    Bid,
    Bounty,
    Campaign,
    Capability,
    Introduction,
    Message,
    Need,
    Organisation,
    ShortlistItem,
)
from service.settings import Settings

PASSWORD = "correct horse battery"

# Strings that belong to enterprise B only: none may ever appear in a response to A, and
# vice versa (need ids and titles, bid ids).
PRIVATE = {
    "ent_a": ("N-A1", "N-A2", "甲公司保密需求", "甲公司公开需求", "BID-A"),
    "ent_b": ("N-B1", "N-B2", "乙公司保密需求", "乙公司公开需求", "BID-B"),
}
# What an institute user may never see: the enterprises' confidential needs and their bids,
# and the other institute's bid (UNI-1 placed BID-U). A public need is shown to an institute
# once staff forward an introduction about it.
_CONFIDENTIAL = ("N-A2", "甲公司保密需求", "N-B1", "乙公司保密需求", "BID-A", "BID-B")
INSTITUTE_PRIVATE = {
    "inst_a": _CONFIDENTIAL,
    "inst_b": (*_CONFIDENTIAL, "BID-U", "大学方案"),
}


@dataclass
class World:
    settings: Settings
    factory: sessionmaker[Session]
    keys: dict[str, str]
    user_ids: dict[str, int]
    ids: dict[str, int] = field(default_factory=dict)


def make_world(tmp_path: Path, database_url: str | None = None) -> World:
    """A fresh migrated database (SQLite in ``tmp_path`` unless ``database_url``) with the
    demo-sized fixture data and users."""
    settings = Settings(
        data_dir=tmp_path, database_url=database_url, secret_key="test-secret-key-0123456789"
    )
    _engine, factory = open_store(settings.resolved_database_url)
    keys: dict[str, str] = {}
    user_ids: dict[str, int] = {}
    ids: dict[str, int] = {}
    with session_scope(factory) as s:
        orgs = {
            "ENT-A": Organisation(
                external_id="ENT-A",
                name="甲公司",
                kind="enterprise",
                in_region=True,
                province="广西",
                city="南宁",
            ),
            "ENT-B": Organisation(
                external_id="ENT-B",
                name="乙公司",
                kind="enterprise",
                in_region=True,
                province="广西",
                city="柳州",
            ),
            "UNI-1": Organisation(
                external_id="UNI-1",
                name="广西大学",
                kind="university",
                in_region=True,
                province="广西",
            ),
            "INST-1": Organisation(
                external_id="INST-1",
                name="材料研究所",
                kind="institute",
                in_region=False,
                province="北京",
            ),
        }
        s.add_all(orgs.values())
        s.flush()
        needs = [
            Need(
                external_id="N-A1",
                org_id=orgs["ENT-A"].id,
                title="甲公司公开需求",
                description="铝合金轮毂轻量化",
                keywords=["铝合金"],
            ),
            Need(
                external_id="N-A2",
                org_id=orgs["ENT-A"].id,
                title="甲公司保密需求",
                description="新型电池管理",
                confidential=True,
            ),
            Need(
                external_id="N-B1",
                org_id=orgs["ENT-B"].id,
                title="乙公司保密需求",
                description="甘蔗渣综合利用",
                confidential=True,
            ),
            Need(
                external_id="N-B2",
                org_id=orgs["ENT-B"].id,
                title="乙公司公开需求",
                description="糖厂废水处理",
            ),
        ]
        caps = [
            Capability(
                external_id="C-U1",
                org_id=orgs["UNI-1"].id,
                kind="achievement",
                title="轻量化铝合金成形",
                description="铝合金轮毂低压铸造",
            ),
            Capability(
                external_id="C-I1",
                org_id=orgs["INST-1"].id,
                kind="patent",
                title="厌氧废水处理",
                description="高浓度有机废水",
            ),
        ]
        s.add_all(needs + caps)
        s.flush()
        bounty = Bounty(
            external_id="BT-1",
            kind="tackle",
            poster_org_id=orgs["ENT-B"].id,
            need_id=needs[3].id,
            title="糖厂废水揭榜",
            description="处理高浓度废水",
            budget=100.0,
        )
        s.add(bounty)
        s.flush()
        s.add_all(
            [
                Bid(
                    external_id="BID-A",
                    bounty_id=bounty.id,
                    respondent_org_id=orgs["ENT-A"].id,
                    price=80.0,
                    proposal="甲公司方案",
                ),
                Bid(
                    external_id="BID-U",
                    bounty_id=bounty.id,
                    respondent_org_id=orgs["UNI-1"].id,
                    price=90.0,
                    proposal="大学方案",
                ),
            ]
        )
        # ENT-B bidding on its own bounty is odd but gives B a private bid to protect.
        s.add(
            Bid(
                external_id="BID-B",
                bounty_id=bounty.id,
                respondent_org_id=orgs["ENT-B"].id,
                price=70.0,
                proposal="乙公司方案",
            )
        )
        campaign = Campaign(name="2026 春季结对", params={"k": 2}, status="done", progress=1.0)
        s.add(campaign)
        s.flush()
        items = [
            ShortlistItem(
                campaign_id=campaign.id,
                enterprise_id=orgs["ENT-A"].id,
                institute_id=orgs["UNI-1"].id,
                need_id=needs[0].id,
                score=0.9,
                evidence={"documents": [{"doc_id": "C-U1"}]},
            ),
            ShortlistItem(
                campaign_id=campaign.id,
                enterprise_id=orgs["ENT-B"].id,
                institute_id=orgs["INST-1"].id,
                need_id=needs[3].id,
                score=0.8,
            ),
        ]
        s.add_all(items)
        s.flush()
        fresh = Campaign(name="2026 秋季结对(未运行)", params={"k": 2})
        s.add(fresh)
        s.flush()
        ids.update(
            campaign=campaign.id,
            item_a=items[0].id,
            item_b=items[1].id,
            fresh_campaign=fresh.id,
            bounty=bounty.id,
        )
        for name, role, org in (
            ("ent_a", "enterprise", "ENT-A"),
            ("ent_b", "enterprise", "ENT-B"),
            ("inst_a", "institute", "UNI-1"),
            ("inst_b", "institute", "INST-1"),
            ("staff", "staff", None),
            ("admin", "admin", None),
        ):
            user, key = crud.create_user(
                s, username=name, role=role, org_external_id=org, password=PASSWORD
            )
            assert key is not None
            keys[name] = key
            user_ids[name] = user.id
        # Introductions (对接申请) at three steps, and one message for enterprise A.
        intro_rows = {
            "intro_a_neg": Introduction(  # A ↔ UNI-1, accepted: the outcome is A's to record
                need_id=needs[0].id,
                enterprise_id=orgs["ENT-A"].id,
                institute_id=orgs["UNI-1"].id,
                status="negotiating",
                message="甲公司申请说明",
            ),
            "intro_a_fwd": Introduction(  # A → INST-1, forwarded: INST-1 is to answer
                need_id=needs[0].id,
                enterprise_id=orgs["ENT-A"].id,
                institute_id=orgs["INST-1"].id,
                status="forwarded",
            ),
            "intro_b_sub": Introduction(  # B → UNI-1, submitted: staff are to forward it
                need_id=needs[3].id,
                enterprise_id=orgs["ENT-B"].id,
                institute_id=orgs["UNI-1"].id,
                status="submitted",
            ),
        }
        s.add_all(intro_rows.values())
        msg = Message(
            user_id=user_ids["ent_a"], kind="test", title="给甲公司的消息", link="/portal/needs"
        )
        s.add(msg)
        s.flush()
        ids.update({k: v.id for k, v in intro_rows.items()}, msg_a=msg.id)
    return World(settings=settings, factory=factory, keys=keys, user_ids=user_ids, ids=ids)


def _sug(org: str, rank: int, query_id: str | None, docs: tuple[str, ...]) -> Suggestion:
    return Suggestion(
        org_id=org,
        score=1.0 / rank,
        rank=rank,
        features={"semantic": 0.5},
        contributions={"semantic": 0.4, "bias": 0.1},
        evidence=tuple(
            Evidence(query_doc_id=query_id, doc_id=d, score=0.5, query_snippet="q", doc_snippet="d")
            for d in docs
        ),
        shared_keywords=("铝合金",),
        query_id=query_id,
    )


NEED_KEYS = {"N:N-A1", "N:N-A2", "N:N-B1", "N:N-B2"}


# Campaign scores of the fake: enterprise -> (its best need, {institute: score}).
PAIR_SCORES: dict[str, tuple[str, dict[str, float]]] = {
    "ENT-A": ("N:N-A1", {"UNI-1": 0.9, "INST-1": 0.6}),
    "ENT-B": ("N:N-B2", {"UNI-1": 0.8, "INST-1": 0.7}),
}


class FakeRecommender:
    """Answers like matcher.pipeline.Recommender over the fixture world, with document ids as
    service.snapshot keys ("N:<need>", "C:<capability>"). It deliberately cites enterprise B's
    need as evidence so the API's evidence filter is exercised. Campaigns run the real pairing
    engine over :data:`PAIR_SCORES`."""

    orgs: dict[str, OrgInfo] = {
        "ENT-A": OrgInfo("ENT-A", "甲公司", "enterprise", True),
        "ENT-B": OrgInfo("ENT-B", "乙公司", "enterprise", True),
        "UNI-1": OrgInfo("UNI-1", "广西大学", "university", True),
        "INST-1": OrgInfo("INST-1", "研究所", "institute", True),
    }
    documents: dict[str, Document] = {}  # nothing to browse: pages that list documents show none

    def __init__(self, tag: str = "v1") -> None:
        self.tag = tag
        self.calls: list[tuple[str, Any]] = []

    def enterprise_matrix(self, enterprise_ids: Any, org_ids: Any, **_: Any) -> PairMatrix:
        self.calls.append(("matrix", tuple(enterprise_ids)))
        n, m = len(enterprise_ids), len(org_ids)
        scores = np.zeros((n, m))
        best = np.full((n, m), None, dtype=object)
        matches = np.full((n, m), None, dtype=object)
        for i, ent in enumerate(enterprise_ids):
            need, row = PAIR_SCORES.get(ent, ("", {}))
            for j, org in enumerate(org_ids):
                if org in row:
                    scores[i, j] = row[org]
                    best[i, j] = need
                    matches[i, j] = Scored(
                        Query(need, "", ent),
                        OrgMatch(org, (), np.zeros(len(FEATURE_NAMES))),
                        row[org],
                        np.zeros(len(FEATURE_NAMES)),
                        0.0,
                    )
        forbidden = best == None  # noqa: E711 (elementwise)
        return PairMatrix(tuple(enterprise_ids), tuple(org_ids), scores, forbidden, best, matches)

    def explain_match(self, match: Scored) -> Suggestion:
        self.calls.append(("explain", (match.query.id, match.match.org_id)))
        docs = ("C:C-U1",) if match.match.org_id == "UNI-1" else ("C:C-I1",)
        sug = _sug(match.match.org_id, 1, match.query.id, docs)
        return dataclasses.replace(sug, rank=0, score=match.score)

    def rank_for_need(self, need_id: str, k: int = 10, **_: Any) -> RankedOrgs:
        self.calls.append(("need", need_id))
        if need_id not in NEED_KEYS:
            raise UnknownEntity(f"unknown document {need_id!r}")
        sugs = (
            _sug("UNI-1", 1, need_id, ("C:C-U1", "N:N-B1")),
            _sug("INST-1", 2, need_id, ("C:C-I1",)),
        )
        return RankedOrgs(sugs[:k], (Exclusion(org_id="ENT-B", code="SAME_GROUP", score=0.7),))

    def suggest_for_need(self, need_id: str, k: int = 10, **kw: Any) -> list[Suggestion]:
        return list(self.rank_for_need(need_id, k, **kw).suggestions)

    def suggest_for_enterprise(self, org_id: str, k: int = 10, **_: Any) -> list[Suggestion]:
        self.calls.append(("enterprise", org_id))
        own = "N:N-A1" if org_id == "ENT-A" else "N:N-B2"
        return [_sug("UNI-1", 1, own, ("C:C-U1",)), _sug("INST-1", 2, "N:N-B1", ("N:N-B1",))][:k]

    def suggest_for_text(
        self, text: str, k: int = 10, *, viewer_org_id: str | None = None, **_: Any
    ) -> list[Suggestion]:
        self.calls.append(("text", viewer_org_id))
        return [_sug("INST-1", 1, None, ("C:C-I1", "N:N-B2"))][:k]

    def respondents_for_bounty(
        self, bounty: BountyInfo, k: int = 10, *, candidates: Any = None, **_: Any
    ) -> RankedOrgs:
        self.calls.append(("bounty", bounty.id))
        if bounty.need_id is not None and bounty.need_id not in NEED_KEYS:
            raise UnknownEntity(f"unknown document {bounty.need_id!r}")
        sugs = [_sug("UNI-1", 1, bounty.id, ("C:C-U1",)), _sug("INST-1", 2, bounty.id, ("C:C-I1",))]
        if candidates is not None:
            sugs = [s for s in sugs if s.org_id in candidates]
        excl = tuple(
            Exclusion(org_id=o, code="SAME_ORG")
            for o in (candidates or ())
            if o not in {"UNI-1", "INST-1"}
        )
        return RankedOrgs(tuple(sugs[:k]), excl)

    def score_pairs(self, pairs: Any, *, viewer_org_id: str | None = None) -> list[float]:
        out = []
        for q, o in pairs:
            if q not in NEED_KEYS:
                raise UnknownEntity(f"unknown document {q!r}")
            if o not in {"ENT-A", "ENT-B", "UNI-1", "INST-1"}:
                raise UnknownEntity(o)
            out.append(0.5)
        return out


class FakeHandle:
    """A RecommenderHandle stand-in: ``swap`` replaces the recommender atomically."""

    def __init__(self, recommender: Any | None = None) -> None:
        self._rec = recommender
        self._lock = threading.Lock()
        self.build = "build-1" if recommender is not None else None

    def get(self) -> Any:
        with self._lock:
            if self._rec is None:
                raise IndexNotReady("no build")
            return self._rec

    def swap(self, recommender: Any, build: str) -> None:
        with self._lock:
            self._rec, self.build = recommender, build

    def status(self) -> dict[str, Any]:
        return {"ready": self._rec is not None, "build_id": self.build}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# --- pytest fixtures (import them into a test module to use them) --------------------------

import shutil  # noqa: E402
import sqlite3  # noqa: E402

import pytest  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402


@pytest.fixture(scope="session")
def world_template(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Built once per session; tests get a copy of its SQLite file."""
    return make_world(tmp_path_factory.mktemp("api-world"))


@pytest.fixture
def world(
    request: pytest.FixtureRequest, world_template: World, tmp_path: Path, db_backend: str
) -> Iterator[World]:
    """A private copy of the world: a SQLite file, or a PostgreSQL database cloned from the
    template database (tests/service/conftest.py parametrises ``db_backend``)."""
    if db_backend == "postgresql":
        server = request.getfixturevalue("postgres_server")
        template: World = request.getfixturevalue("pg_world_template")
        name = server.fresh_name("w")
        url = server.create(name, template=template.settings.database_url.rsplit("/", 1)[1])
        settings = Settings(
            data_dir=tmp_path, database_url=url, secret_key=template.settings.secret_key
        )
        engine, factory = open_store(url, upgrade=False)
        yield World(
            settings=settings,
            factory=factory,
            keys=dict(template.keys),
            user_ids=dict(template.user_ids),
            ids=dict(template.ids),
        )
        engine.dispose()
        server.drop(name)
        return
    src = Path(world_template.settings.resolved_database_url.split("///", 1)[1])
    with sqlite3.connect(src) as con:  # fold the WAL into the main file before copying
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(src, tmp_path / "duijie.sqlite3")
    settings = Settings(data_dir=tmp_path, secret_key=world_template.settings.secret_key)
    engine, factory = open_store(settings.resolved_database_url, upgrade=False)
    yield World(
        settings=settings,
        factory=factory,
        keys=dict(world_template.keys),
        user_ids=dict(world_template.user_ids),
        ids=dict(world_template.ids),
    )
    engine.dispose()


@pytest.fixture
def handle() -> FakeHandle:
    return FakeHandle(FakeRecommender())


@pytest.fixture
def client(world: World, handle: FakeHandle) -> Any:
    from service.main import create_app

    # Campaigns run the real pairing engine over the fake recommender's score matrix.
    app = create_app(world.settings, session_factory=world.factory, recommender=handle)
    with TestClient(app) as c:
        yield c
