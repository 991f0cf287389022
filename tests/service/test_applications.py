"""Bounty applications (揭榜申报) at the service level: validation, eligibility through the
matcher's bounty rules, refusals that store nothing, proposals, publishing, status messages."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from service import applications as app
from service import auth
from service import bounty_lifecycle as bl
from service import models as m
from service.errors import Conflict, Forbidden, InvalidRequest, NotFound
from service.forms import FormErrors


def _principal(user: m.User) -> auth.Principal:
    return auth.Principal(
        user_id=user.id,
        username=user.username,
        role=user.role,  # type: ignore[arg-type]
        org_id=user.org_id,
        org_external_id=user.org.external_id if user.org else None,
    )


@pytest.fixture
def world(store: Any) -> dict[str, Any]:
    """Poster group (holding + subsidiary), an institute, an out-of-region company,
    a tackle bounty on the holding's need and a transfer bounty."""
    with store.factory() as s:
        holding = m.Organisation(
            external_id="G", name="柳工集团", kind="enterprise", in_region=True
        )
        s.add(holding)
        s.flush()
        sub = m.Organisation(
            external_id="G-SUB", name="柳工研究院", kind="institute", parent_id=holding.id
        )
        uni = m.Organisation(external_id="U", name="广西大学", kind="university", in_region=True)
        lab = m.Organisation(external_id="L", name="北京材料所", kind="institute")
        far = m.Organisation(external_id="F", name="深圳某公司", kind="enterprise")
        closed = m.Organisation(
            external_id="X", name="已停用单位", kind="institute", status="inactive"
        )
        s.add_all([sub, uni, lab, far, closed])
        s.flush()
        need = m.Need(external_id="N1", org_id=holding.id, title="装载机轻量化")
        s.add(need)
        s.flush()
        tackle = m.Bounty(
            external_id="BT-T",
            kind="tackle",
            poster_org_id=holding.id,
            need_id=need.id,
            title="装载机结构件轻量化攻关",
            description="降低结构件重量。",
            budget=300.0,
        )
        transfer = m.Bounty(
            external_id="BT-R",
            kind="transfer",
            poster_org_id=uni.id,
            title="甘蔗渣材料成果转化",
            description="寻找区内企业承接。",
        )
        s.add_all([tackle, transfer])
        users = {
            name: m.User(username=name, role=role, org_id=org.id)
            for name, role, org in [
                ("uni", "institute", uni),
                ("sub", "institute", sub),
                ("far", "enterprise", far),
                ("holding", "enterprise", holding),
            ]
        }
        users["staff"] = m.User(username="staff", role="staff")
        s.add_all(users.values())
        s.commit()
        return {
            "factory": store.factory,
            "p": {k: _principal(u) for k, u in users.items()},
            "need_id": need.id,
        }


def _bids(factory: Any) -> int:
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(m.Bid)) or 0)


def _submit(world: dict[str, Any], who: str, bounty: str = "BT-T", **kw: Any) -> m.Bid:
    fields: dict[str, Any] = {"proposal": "采用拓扑优化与高强钢。", "price": "120", "members": []}
    fields.update(kw)
    with world["factory"]() as s:
        bid = app.submit_application(
            s, applicant=world["p"][who], bounty_external_id=bounty, **fields
        )
        s.commit()
        return bid


def test_eligible_application_is_stored(world: dict[str, Any]) -> None:
    bid = _submit(world, "uni", members=["L"])
    with world["factory"]() as s:
        row = s.scalar(select(m.Bid).where(m.Bid.external_id == bid.external_id))
        assert row is not None
        assert (row.price, row.members, row.status) == (120.0, ["L"], "submitted")
        assert s.scalar(select(m.AuditLog.action).where(m.AuditLog.entity_id == row.external_id))
    with pytest.raises(Conflict):
        _submit(world, "uni")
    assert _bids(world["factory"]) == 1


@pytest.mark.parametrize(
    ("who", "bounty", "members", "code", "phrase"),
    [
        ("sub", "BT-T", [], "SAME_GROUP", "同一集团"),  # the poster's subsidiary
        ("uni", "BT-T", ["G-SUB"], "SAME_GROUP", "联合体成员“柳工研究院”"),
        ("uni", "BT-R", [], "SAME_ORG", "发榜单位或需求单位本身"),  # the poster itself
        ("far", "BT-R", [], "NOT_IN_REGION", "不在区内"),  # transfer: in-region only
        ("sub", "BT-R", [], "WRONG_KIND", "科研院所"),  # transfer: enterprises lead
    ],
)
def test_ineligible_application_is_refused_and_nothing_stored(
    world: dict[str, Any], who: str, bounty: str, members: list[str], code: str, phrase: str
) -> None:
    with pytest.raises(app.ApplicationRefused) as err:
        _submit(world, who, bounty, members=members)
    assert code in err.value.codes
    assert any(phrase in r for r in err.value.reasons), err.value.reasons
    assert err.value.detail.startswith("不符合揭榜条件")
    assert _bids(world["factory"]) == 0
    with world["factory"]() as s:
        assert s.scalar(select(func.count()).select_from(m.AuditLog)) == 0


def test_closed_or_late_bounty_is_refused(world: dict[str, Any]) -> None:
    with world["factory"]() as s:
        b = s.scalar(select(m.Bounty).where(m.Bounty.external_id == "BT-T"))
        assert b is not None
        b.deadline = date.today() - timedelta(days=1)
        s.commit()
    with pytest.raises(app.ApplicationRefused) as err:
        _submit(world, "uni")
    assert "截止日期" in err.value.reasons[0]
    with world["factory"]() as s:
        b = s.scalar(select(m.Bounty).where(m.Bounty.external_id == "BT-T"))
        assert b is not None
        b.deadline, b.status = None, "closed"
        s.commit()
    with pytest.raises(app.ApplicationRefused) as err:
        _submit(world, "uni")
    assert err.value.codes[0] == "INACTIVE" and "不在申报期" in err.value.reasons[0]
    assert _bids(world["factory"]) == 0


@pytest.mark.parametrize(
    ("field", "kw"),
    [
        ("proposal", {"proposal": ""}),
        ("proposal", {"proposal": "长" * (app.PROPOSAL_MAX + 1)}),
        ("price", {"price": "-1"}),
        ("price", {"price": "一百"}),
        ("price", {"price": "nan"}),
        ("price", {"price": str(app.PRICE_MAX + 1)}),
        ("price", {"price": ""}),
        ("members", {"members": ["NOPE"]}),
        ("members", {"members": ["L", "L"]}),
        ("members", {"members": ["U"]}),  # the applicant itself
        ("members", {"members": ["X"]}),  # inactive
        ("members", {"members": [f"M{i}" for i in range(app.MAX_MEMBERS + 1)]}),
    ],
)
def test_bad_fields_are_refused_in_chinese(
    world: dict[str, Any], field: str, kw: dict[str, Any]
) -> None:
    with pytest.raises(FormErrors) as err:
        _submit(world, "uni", **kw)
    assert field in err.value.fields
    assert any("\u4e00" <= ch <= "\u9fff" for ch in err.value.fields[field])
    assert _bids(world["factory"]) == 0


def test_who_may_apply(world: dict[str, Any]) -> None:
    with pytest.raises(Forbidden):
        _submit(world, "staff")
    with world["factory"]() as s:
        b = s.scalar(select(m.Bounty).where(m.Bounty.external_id == "BT-T"))
        assert b is not None
        b.status = app.PROPOSED
        s.commit()
    with pytest.raises(NotFound):  # a proposal is not public
        _submit(world, "uni")


def test_propose_publish_and_open_ranking(world: dict[str, Any]) -> None:
    p = world["p"]
    with world["factory"]() as s:
        fields = app.parse_bounty_proposal(
            title="轻量化", description="详细说明。", budget="50", deadline=""
        )
        bounty = app.propose_bounty(s, user=p["holding"], need_external_id="N1", fields=fields)
        s.commit()
        ext = bounty.external_id
        assert (bounty.status, bounty.kind, bounty.need_id) == (
            "proposed",
            "tackle",
            world["need_id"],
        )
        with pytest.raises(NotFound):  # another organisation's need
            app.propose_bounty(s, user=p["far"], need_external_id="N1", fields=fields)
        with pytest.raises(Forbidden):
            app.publish_bounty(s, user=p["holding"], bounty_external_id=ext)
        # the lifecycle's rule: applications cannot open without a closing date
        with pytest.raises(bl.TransitionRefused, match="截止日期"):
            app.publish_bounty(s, user=p["staff"], bounty_external_id=ext)
        s.rollback()
    with world["factory"]() as s:  # the refused publish left it a proposal, unaudited
        row = s.scalar(select(m.Bounty).where(m.Bounty.external_id == ext))
        assert row is not None and row.status == "proposed"
        assert not s.scalars(
            select(m.AuditLog).where(m.AuditLog.action == "bounty.transition")
        ).all()
        closing = date.today() + timedelta(days=30)
        app.publish_bounty(s, user=p["staff"], bounty_external_id=ext, deadline=closing)
        app.open_ranking(s, user=p["staff"], bounty_external_id=ext)
        s.commit()
        with pytest.raises(Conflict):  # only a proposal can be published
            app.publish_bounty(s, user=p["staff"], bounty_external_id=ext, deadline=closing)
    with world["factory"]() as s:
        row = s.scalar(select(m.Bounty).where(m.Bounty.external_id == ext))
        assert row is not None and (row.status, row.ranking_open) == ("open", True)
        assert row.deadline == closing
        steps = s.scalars(
            select(m.AuditLog)
            .where(m.AuditLog.action == "bounty.transition", m.AuditLog.entity_id == ext)
            .order_by(m.AuditLog.id)
        ).all()
        assert [(a.detail["from"], a.detail["to"]) for a in steps] == [
            ("proposed", "assessing"),
            ("assessing", "published"),
            ("published", "open"),
        ]
    _submit(world, "uni", bounty=ext)


def test_publish_refuses_a_closing_date_in_the_past(world: dict[str, Any]) -> None:
    p = world["p"]
    with world["factory"]() as s:
        fields = app.parse_bounty_proposal(title="t", description="d", budget="", deadline="")
        ext = app.propose_bounty(s, user=p["holding"], need_external_id="N1", fields=fields)
        s.commit()
        past = date.today() - timedelta(days=1)
        with pytest.raises(bl.TransitionRefused, match="已过"):
            app.publish_bounty(
                s, user=p["staff"], bounty_external_id=ext.external_id, deadline=past
            )
        s.rollback()
        row = s.scalar(select(m.Bounty).where(m.Bounty.external_id == ext.external_id))
        assert row is not None and (row.status, row.deadline) == ("proposed", None)


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"title": ""}, "title"),
        ({"budget": "-5"}, "budget"),
        ({"deadline": "2020-01-01"}, "deadline"),
        ({"deadline": "明天"}, "deadline"),
        ({"description": "长" * 5001}, "description"),
    ],
)
def test_bad_proposal_fields(kw: dict[str, Any], field: str) -> None:
    fields: dict[str, Any] = {"title": "t", "description": "d", "budget": "", "deadline": ""}
    fields.update(kw)
    with pytest.raises(FormErrors) as err:
        app.parse_bounty_proposal(**fields)
    assert field in err.value.fields


def test_staff_check_cannot_award_or_reopen_a_decided_application(
    world: dict[str, Any],
) -> None:
    """中榜/未中榜 come only from the award; a decided application keeps its status."""
    bid = _submit(world, "uni")
    staff = world["p"]["staff"]
    with world["factory"]() as s:
        for status in ("awarded", "not_awarded", "withdrawn"):
            with pytest.raises(InvalidRequest):
                app.set_application_status(
                    s, user=staff, bid_external_id=bid.external_id, status=status
                )
        app.set_application_status(
            s, user=staff, bid_external_id=bid.external_id, status="qualified"
        )
        row = s.scalar(select(m.Bid).where(m.Bid.external_id == bid.external_id))
        assert row is not None and row.status == "qualified"
        row.status = "awarded"  # as the award leaves it
        s.commit()
        with pytest.raises(Conflict, match="中榜"):
            app.set_application_status(
                s, user=staff, bid_external_id=bid.external_id, status="disqualified", note="迟交"
            )
        s.rollback()
        row = s.scalar(select(m.Bid).where(m.Bid.external_id == bid.external_id))
        assert row is not None and row.status == "awarded"
