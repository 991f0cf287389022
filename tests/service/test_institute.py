"""An institute's capabilities and the needs that match it: real SQLite, a real index build
(deterministic fake encoder), the real recommender."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import service.jobs.reindex as job
from service import auth
from service import institute as inst
from service import models as m
from service.errors import NotFound
from service.forms import FormErrors
from service.recommender import RecommenderHandle
from service.settings import load_settings
from tests.embeddings.conftest import FakeEncoder

PP = "改性聚丙烯低温韧性增韧材料"


def seed(factory: Any) -> dict[str, int]:
    """Institute U (two capabilities), enterprises with a public, a confidential, a closed
    and an unrelated need, and U's own subsidiary company with a matching need."""
    with factory() as s:
        u = m.Organisation(external_id="U", name="广西大学", kind="university", in_region=True)
        other = m.Organisation(external_id="V", name="桂林理工", kind="university")
        ents = {
            k: m.Organisation(external_id=k, name=f"企业{k}", kind="enterprise", city="柳州")
            for k in ("E1", "E2", "E3", "E4")
        }
        s.add_all([u, other, *ents.values()])
        s.flush()
        spin = m.Organisation(
            external_id="E-SPIN", name="广西大学资产公司", kind="enterprise", parent_id=u.id
        )
        s.add(spin)
        s.flush()
        s.add_all(
            [
                m.Capability(external_id="c1", org_id=u.id, kind="achievement",
                             title="聚丙烯增韧改性", description=f"{PP}，共混接枝。"),
                m.Capability(external_id="c2", org_id=other.id, kind="patent",
                             title="甘蔗收获机", description="切割刀片。"),
                m.Need(external_id="n-public", org_id=ents["E1"].id, title="保险杠聚丙烯增韧",
                       description=f"需要{PP}。", field="新材料"),
                m.Need(external_id="n-secret", org_id=ents["E2"].id, title="保密聚丙烯",
                       description=f"需要{PP}。", confidential=True),
                m.Need(external_id="n-closed", org_id=ents["E3"].id, title="已关闭聚丙烯",
                       description=f"需要{PP}。", status="closed"),
                m.Need(external_id="n-cane", org_id=ents["E4"].id, title="甘蔗收获",
                       description="提高切割效率。"),
                m.Need(external_id="n-group", org_id=spin.id, title="集团内聚丙烯",
                       description=f"需要{PP}。"),
            ]
        )  # fmt: skip
        user = m.User(username="u-user", role="institute", org_id=u.id)
        s.add(user)
        s.commit()
        return {"u": u.id, "user": user.id}


@pytest.fixture
def env(store: Any, tmp_path: Path) -> dict[str, Any]:
    ids = seed(store.factory)
    enc = FakeEncoder()
    settings = load_settings(database_url=store.url, index_dir=tmp_path / "index")
    job.run_reindex(settings, encoder=enc)
    handle = RecommenderHandle(settings, store.factory, encoder=enc, check_interval=0.0)
    principal = auth.Principal(
        user_id=ids["user"],
        username="u-user",
        role="institute",
        org_id=ids["u"],
        org_external_id="U",  # type: ignore[arg-type]
    )
    return {"factory": store.factory, "handle": handle, "settings": settings, "me": principal,
            "enc": enc}  # fmt: skip


def test_matching_needs_only_public_open_eligible(env: dict[str, Any]) -> None:
    with env["factory"]() as s:
        found = inst.matching_needs(s, env["handle"].get(), org_ext="U")
    ids = [f.need_id for f in found]
    assert ids and ids[0] == "n-public"
    # never: confidential, closed, our own corporate group's
    assert not {"n-secret", "n-closed", "n-group"} & set(ids)
    top = found[0]
    assert top.enterprise == "企业E1" and top.city == "柳州"
    assert top.evidence and top.evidence[0].capability_id == "c1"
    assert top.evidence[0].capability_title == "聚丙烯增韧改性"
    assert [f.score for f in found] == sorted((f.score for f in found), reverse=True)


def test_need_made_confidential_after_indexing_disappears(env: dict[str, Any]) -> None:
    rec = env["handle"].get()  # loaded before the change: the store is checked afterwards
    with env["factory"]() as s:
        need = s.scalar(select(m.Need).where(m.Need.external_id == "n-public"))
        assert need is not None
        need.confidential = True
        s.commit()
        assert "n-public" not in [f.need_id for f in inst.matching_needs(s, rec, org_ext="U")]


def test_capability_create_edit_retire_and_reindex(env: dict[str, Any]) -> None:
    me = env["me"]
    form = {"kind": "team", "title": "甘蔗渣材料团队", "description": "甘蔗渣制备可降解材料的研究团队。",
            "keywords": "甘蔗渣、可降解", "trl": "5", "year": "2024", "field": "新材料"}  # fmt: skip
    with env["factory"]() as s:
        cap = inst.save_capability(s, user=me, data=inst.parse_capability(form))
        s.commit()
        ext = cap.external_id
        assert cap.keywords == ["甘蔗渣", "可降解"] and cap.trl == 5
    built = inst.indexed_state(env["settings"].resolved_index_dir)
    with env["factory"]() as s:
        caps = inst.list_own_capabilities(s, org_id=me.org_id)
        assert ext in inst.pending_reindex(caps, built)
    job.run_reindex(env["settings"], encoder=env["enc"])
    built = inst.indexed_state(env["settings"].resolved_index_dir)
    with env["factory"]() as s:
        caps = inst.list_own_capabilities(s, org_id=me.org_id)
        assert inst.pending_reindex(caps, built) == set()
        inst.save_capability(
            s, user=me, external_id=ext, data=inst.parse_capability({**form, "trl": "6"})
        )
        s.commit()
        caps = inst.list_own_capabilities(s, org_id=me.org_id)
        assert inst.pending_reindex(caps, built) == set()  # TRL is not indexed text
        edited = {**form, "trl": "6", "description": form["description"] + "已完成中试。"}
        inst.save_capability(s, user=me, external_id=ext, data=inst.parse_capability(edited))
        s.commit()
        caps = inst.list_own_capabilities(s, org_id=me.org_id)
        assert inst.pending_reindex(caps, built) == {ext}
        inst.set_capability_status(s, user=me, external_id=ext, active=False)
        s.commit()
        row = s.scalar(select(m.Capability).where(m.Capability.external_id == ext))
        assert row is not None and row.status == "inactive" and row.trl == 6
        actions = s.scalars(select(m.AuditLog.action).where(m.AuditLog.entity_id == ext)).all()
        assert actions == [
            "capability.create",
            "capability.update",
            "capability.update",
            "capability.retire",
        ]
        with pytest.raises(NotFound):  # another organisation's capability
            inst.own_capability(s, user=me, external_id="c2")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kind", "spaceship"),
        ("kind", ""),
        ("title", ""),
        ("title", "长" * 301),
        ("description", "太短"),
        ("description", "长" * (inst.DESCRIPTION_MAX + 1)),
        ("field", "长" * 65),
        ("keywords", "、".join(f"词{i}" for i in range(21))),
        ("keywords", "长" * 51),
        ("trl", "0"),
        ("trl", "10"),
        ("trl", "五"),
        ("year", "1900"),
        ("year", "3000"),
        ("year", "二〇二四"),
    ],
)
def test_capability_form_bounds(field: str, value: str) -> None:
    form = {"kind": "team", "title": "团队", "description": "一个足够长的团队简介文字。"}
    with pytest.raises(FormErrors) as err:
        inst.parse_capability({**form, field: value})
    assert list(err.value.fields) == [field]
