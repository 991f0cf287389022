"""A tiny staff-page world for the web and browser tests, written directly through the models.

One staff user, one enterprise user (password and API key), two enterprises, two institutes,
one campaign with two assigned pairs and one uncovered enterprise, one bounty with two bids.
No index is built: pages that need the recommender must say 索引未就绪.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from service import auth
from service.db import open_store
from service.models import (
    ApiKey,
    Bid,
    Bounty,
    Campaign,
    Capability,
    Need,
    Organisation,
    ShortlistItem,
    User,
)
from service.settings import Settings, load_settings

STAFF_USER = "zhang_staff"
STAFF_PASSWORD = "staff-pass-123"
ENTERPRISE_USER = "qiye_user"
ENTERPRISE_PASSWORD = "qiye-pass-456"
SECRET = "test-secret-key-for-web-pages-0123456789"

NEED_DESC = (
    "我们生产甘蔗糖。希望利用甘蔗渣制备生物基可降解材料,降低废弃物处理成本。年产量约十万吨。"
)
CAP_DESC = (
    "本团队研究农业废弃物综合利用。开发了以甘蔗渣为原料制备可降解包装材料的工艺。已完成中试。"
)


@dataclass(frozen=True)
class World:
    """Ids and credentials of the seeded rows."""

    url: str
    settings: Settings
    factory: sessionmaker[Session]
    staff_id: int
    enterprise_user_id: int
    enterprise_key: str
    campaign_id: int
    item_ids: tuple[int, ...]  # (assigned A, assigned B, uncovered C)
    bounty_id: int


def make_settings(url: str, data_dir: Any) -> Settings:
    return load_settings(database_url=url, data_dir=data_dir, secret_key=SECRET, environment="dev")


_TEMPLATE: dict[str, Any] = {}


def seed(url: str, data_dir: Any) -> World:
    """A fresh copy of the small world at ``url`` (a ``sqlite:///`` file URL).

    The world is migrated and written once per process into a template file and copied
    (SQLite backup API) for each caller: migrations and password hashing are the slow part.
    """
    import sqlite3
    import tempfile
    from pathlib import Path

    if "world" not in _TEMPLATE:
        tmp = Path(tempfile.mkdtemp(prefix="duijie-webseed-"))
        _TEMPLATE["path"] = tmp / "template.sqlite3"
        _TEMPLATE["world"] = _write(f"sqlite:///{_TEMPLATE['path']}", tmp)
    template: World = _TEMPLATE["world"]
    target = url.removeprefix("sqlite:///")
    with sqlite3.connect(_TEMPLATE["path"]) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    _engine, factory = open_store(url, upgrade=False)
    return World(
        url=url,
        settings=make_settings(url, data_dir),
        factory=factory,
        staff_id=template.staff_id,
        enterprise_user_id=template.enterprise_user_id,
        enterprise_key=template.enterprise_key,
        campaign_id=template.campaign_id,
        item_ids=template.item_ids,
        bounty_id=template.bounty_id,
    )


def _write(url: str, data_dir: Any) -> World:
    """Migrate the database at ``url`` and write the small world."""
    _engine, factory = open_store(url)
    with factory() as db:
        ent_a = Organisation(
            external_id="E1", name="广西甘糖科技有限公司", kind="enterprise", province="广西",
            in_region=True, fields=["轻工"],
        )  # fmt: skip
        ent_b = Organisation(
            external_id="E2", name="南宁智造装备有限公司", kind="enterprise", province="广西",
            in_region=True, fields=["装备制造"],
        )  # fmt: skip
        ent_c = Organisation(
            external_id="E3", name="柳州新材料有限公司", kind="enterprise", province="广西",
            in_region=True, fields=["新材料"],
        )  # fmt: skip
        inst_x = Organisation(
            external_id="I1", name="广西大学轻工与食品工程学院", kind="university",
            province="广西", fields=["轻工"],
        )  # fmt: skip
        inst_y = Organisation(
            external_id="I2", name="桂林电子科技大学机电学院", kind="university",
            province="广西", fields=["装备制造"],
        )  # fmt: skip
        db.add_all([ent_a, ent_b, ent_c, inst_x, inst_y])
        db.flush()
        need = Need(
            external_id="N1", org_id=ent_a.id, title="甘蔗渣高值化利用",
            description=NEED_DESC, field="轻工", keywords=["甘蔗渣", "可降解"],
        )  # fmt: skip
        cap = Capability(
            external_id="C1", org_id=inst_x.id, kind="achievement", title="甘蔗渣可降解材料",
            description=CAP_DESC, field="轻工", keywords=["甘蔗渣", "可降解"],
        )  # fmt: skip
        db.add_all([need, cap])
        staff = User(
            username=STAFF_USER, role="staff", password_hash=auth.hash_password(STAFF_PASSWORD)
        )
        ent_user = User(
            username=ENTERPRISE_USER, role="enterprise", org_id=ent_a.id,
            password_hash=auth.hash_password(ENTERPRISE_PASSWORD),
        )  # fmt: skip
        db.add_all([staff, ent_user])
        db.flush()
        key = auth.generate_api_key()
        db.add(ApiKey(user_id=ent_user.id, prefix=key.prefix, key_hash=key.key_hash))
        campaign = Campaign(name="2026年春季结对子", status="done", progress=1.0)
        db.add(campaign)
        db.flush()
        evidence = {
            "evidence": [
                {
                    "query_doc_id": "N1",
                    "doc_id": "C1",
                    "score": 0.83,
                    "query_snippet": "希望利用甘蔗渣制备生物基可降解材料,降低废弃物处理成本。",
                    "doc_snippet": "开发了以甘蔗渣为原料制备可降解包装材料的工艺。",
                    "shared_keywords": ["甘蔗渣", "可降解"],
                }
            ]
        }
        a = ShortlistItem(
            campaign_id=campaign.id, enterprise_id=ent_a.id, institute_id=inst_x.id,
            need_id=need.id, score=0.83, rank=1, kind="assigned", evidence=evidence,
        )  # fmt: skip
        b = ShortlistItem(
            campaign_id=campaign.id, enterprise_id=ent_b.id, institute_id=inst_y.id,
            score=0.41, rank=1, kind="assigned", note="=HYPERLINK(\"http://x\")",
        )  # fmt: skip
        c = ShortlistItem(
            campaign_id=campaign.id, enterprise_id=ent_c.id, institute_id=None, score=None,
            rank=1, kind="uncovered", problem="候选机构名额已满:广西大学轻工与食品工程学院",
        )  # fmt: skip
        db.add_all([a, b, c])
        bounty = Bounty(
            external_id="B1", kind="tackle", poster_org_id=ent_a.id, need_id=need.id,
            title="甘蔗渣可降解材料攻关", description="征集甘蔗渣制备可降解材料的技术方案。",
            budget=200.0,
        )  # fmt: skip
        db.add(bounty)
        db.flush()
        db.add_all(
            [
                Bid(
                    external_id="BID1",
                    bounty_id=bounty.id,
                    respondent_org_id=inst_x.id,
                    price=180.0,
                    proposal="甘蔗渣制备可降解包装材料",
                ),  # fmt: skip
                Bid(
                    external_id="BID2",
                    bounty_id=bounty.id,
                    respondent_org_id=inst_y.id,
                    members=["I1"],
                    price=150.0,
                    proposal="联合攻关",
                ),  # fmt: skip
            ]
        )
        db.commit()
        world = World(
            url=url,
            settings=make_settings(url, data_dir),
            factory=factory,
            staff_id=staff.id,
            enterprise_user_id=ent_user.id,
            enterprise_key=key.key,
            campaign_id=campaign.id,
            item_ids=(a.id, b.id, c.id),
            bounty_id=bounty.id,
        )
    return world


def build_app(settings: Settings, *, recommender: Any | None = None) -> Any:
    """The real application (``service.main.create_app``) for ``settings``.

    ``recommender`` is a handle with ``get()``/``status()``; None uses the app's default
    (no index is built in these tests, so every recommender call is IndexNotReady).
    """
    from service.main import create_app

    return create_app(settings, recommender=recommender)
