# ruff: noqa: F811  (pytest fixtures imported from tests.service.api_support)
"""The bounty lifecycle: the pure rules (every illegal move refused with a reason, roles,
deadlines, award), and the stored moves on a real SQLite store (one audit row per move)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from service import auth
from service import bounty_lifecycle as bl
from service.errors import Forbidden
from service.models import AuditLog, Bid, Bounty, Message, Organisation, User
from tests.service.api_support import (  # noqa: F401 (fixtures)
    FakeHandle,
    FakeRecommender,
    World,
    bearer,
    world,
    world_template,
)
from tests.service.conftest import Store

NOW = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)
STAFF = bl.Actor(role="staff")
POSTER = bl.Actor(role="enterprise", org_id=7)
OTHER = bl.Actor(role="enterprise", org_id=8)
INSTITUTE = bl.Actor(role="institute", org_id=9)
BEFORE_LIFECYCLE = "0007_sessions"  # the revision 0008_bounty_lifecycle follows
AWARD = bl.Award(bid_id="B1", price=80.0, funding_enterprise=50.0, funding_academic=30.0)


def facts(status: str, **kw: object) -> bl.BountyFacts:
    base: dict[str, object] = {
        "status": status,
        "poster_org_id": 7,
        "deadline": date(2027, 3, 31),
        "bid_ids": ("B1", "B2"),
        "eligible_bid_ids": ("B1",),
    }
    base.update(kw)
    return bl.BountyFacts(**base)  # type: ignore[arg-type]


def good_move(target: str) -> bl.Move:
    return bl.Move(target=target, reason="项目已撤销", award=AWARD)


def test_the_table_is_one_line_with_withdrawal_before_the_award() -> None:
    assert bl.FORWARD[0] == bl.PROPOSED and bl.FORWARD[-1] == bl.COMPLETED
    assert [bl.STATE_LABELS[s] for s in bl.FORWARD] == [
        "征集", "论证", "发榜", "申报中", "资格审查", "评审", "洽谈", "已立项", "公示", "结项",
    ]  # fmt: skip
    for i, state in enumerate(bl.FORWARD[:-1]):
        assert bl.FORWARD[i + 1] in bl.TRANSITIONS[state]
        assert (bl.WITHDRAWN in bl.TRANSITIONS[state]) == (i < bl.FORWARD.index(bl.AWARDED))
    assert bl.TRANSITIONS[bl.COMPLETED] == bl.TRANSITIONS[bl.WITHDRAWN] == ()


def test_staff_walk_the_whole_line() -> None:
    for state in bl.FORWARD[:-1]:
        target = bl.TRANSITIONS[state][0]
        assert bl.check_transition(facts(state), good_move(target), STAFF, NOW) == [], state


@pytest.mark.parametrize("current", bl.STATES)
def test_every_illegal_move_is_refused_with_a_reason(current: str) -> None:
    for target in bl.STATES:
        if target in bl.TRANSITIONS[current]:
            continue
        reasons = bl.check_transition(facts(current), good_move(target), STAFF, NOW)
        assert reasons, f"{current} -> {target} allowed"
        assert all(isinstance(r, str) and r for r in reasons)
        assert bl.STATE_LABELS[current] in reasons[0]


def test_unknown_states_are_refused() -> None:
    assert "无法识别" in bl.check_transition(facts("bogus"), good_move("open"), STAFF, NOW)[0]
    assert "无法识别" in bl.check_transition(facts("open"), good_move("bogus"), STAFF, NOW)[0]
    # the legacy value "closed" is 结项: nothing follows it
    assert "结项" in bl.check_transition(facts("closed"), good_move("notice"), STAFF, NOW)[0]


def test_the_poster_may_only_withdraw_before_applications_open() -> None:
    for state in (bl.PROPOSED, bl.ASSESSING, bl.PUBLISHED):
        assert bl.check_transition(facts(state), good_move(bl.WITHDRAWN), POSTER, NOW) == []
        assert bl.allowed_moves(facts(state), POSTER) == (bl.WITHDRAWN,)
        forward = bl.TRANSITIONS[state][0]
        assert "发榜企业" in bl.check_transition(facts(state), good_move(forward), POSTER, NOW)[0]
    for state in (bl.OPEN, bl.SCREENING, bl.NEGOTIATING):
        assert bl.check_transition(facts(state), good_move(bl.WITHDRAWN), POSTER, NOW)
        assert bl.allowed_moves(facts(state), POSTER) == ()
    for actor in (OTHER, INSTITUTE):
        assert (
            "工作人员"
            in bl.check_transition(facts(bl.PROPOSED), good_move(bl.WITHDRAWN), actor, NOW)[0]
        )


def test_opening_applications_needs_a_closing_date_not_past() -> None:
    move = bl.Move(target=bl.OPEN)
    assert (
        "截止日期" in bl.check_transition(facts(bl.PUBLISHED, deadline=None), move, STAFF, NOW)[0]
    )
    late = facts(bl.PUBLISHED, deadline=date(2027, 3, 9))
    assert "已过" in bl.check_transition(late, move, STAFF, NOW)[0]
    assert bl.check_transition(facts(bl.PUBLISHED, deadline=NOW.date()), move, STAFF, NOW) == []
    renewed = bl.Move(target=bl.OPEN, deadline=date(2027, 4, 30))
    assert bl.check_transition(late, renewed, STAFF, NOW) == []


def test_steps_that_need_bids() -> None:
    none = facts(bl.OPEN, bid_ids=(), eligible_bid_ids=())
    assert "尚无申报" in bl.check_transition(none, good_move(bl.SCREENING), STAFF, NOW)[0]
    unqualified = facts(bl.SCREENING, eligible_bid_ids=())
    assert "资格审查" in bl.check_transition(unqualified, good_move(bl.REVIEWING), STAFF, NOW)[0]


def test_the_award_needs_an_eligible_bid_and_a_sane_price() -> None:
    f = facts(bl.NEGOTIATING)
    assert bl.check_transition(f, bl.Move(target=bl.AWARDED), STAFF, NOW)
    for award, text in (
        (bl.Award(bid_id="B9", price=80.0), "不属于"),
        (bl.Award(bid_id="B2", price=80.0), "未通过资格审查"),
        (bl.Award(bid_id="B1", price=0.0), "约定金额"),
        (bl.Award(bid_id="B1", price=80.0, funding_academic=-1.0), "高校院所经费"),
    ):
        reasons = bl.check_transition(f, bl.Move(target=bl.AWARDED, award=award), STAFF, NOW)
        assert reasons and text in reasons[0], award


def test_withdrawal_needs_a_reason() -> None:
    move = bl.Move(target=bl.WITHDRAWN, reason="  ")
    assert bl.check_transition(facts(bl.OPEN), move, STAFF, NOW) == ["撤榜须说明原因"]


def _bounty(status: str, deadline: date | None) -> Bounty:
    return Bounty(
        external_id="BT", kind="tackle", poster_org_id=1, title="t", status=status,
        deadline=deadline,
    )  # fmt: skip


def test_a_late_application_is_refused() -> None:
    with pytest.raises(bl.ApplicationClosed, match="2027-03-09 已过"):
        bl.check_can_apply(_bounty(bl.OPEN, date(2027, 3, 9)), NOW)
    bl.check_can_apply(_bounty(bl.OPEN, NOW.date()), NOW)  # the closing day itself is open
    bl.check_can_apply(_bounty(bl.OPEN, None), NOW)
    for state in set(bl.STATES) - {bl.OPEN}:
        with pytest.raises(bl.ApplicationClosed, match="不在申报期内"):
            bl.check_can_apply(_bounty(state, date(2027, 12, 31)), NOW)


# --- on the store ------------------------------------------------------------------------


def _seed(store: Store) -> tuple[int, int, int]:
    with store.factory() as s:
        ent = Organisation(external_id="E1", name="发榜企业", kind="enterprise", in_region=True)
        uni = Organisation(external_id="U1", name="某大学", kind="university", in_region=True)
        s.add_all([ent, uni])
        s.flush()
        bounty = Bounty(
            external_id="BT-9", kind="tackle", poster_org_id=ent.id, title="榜单",
            status=bl.PROPOSED,
        )  # fmt: skip
        s.add(bounty)
        s.flush()
        s.add(Bid(external_id="BID-9", bounty_id=bounty.id, respondent_org_id=uni.id, price=90))
        s.add(User(id=1, username="actor", role="staff"))
        s.commit()
        return bounty.id, ent.id, uni.id


def _principal(role: auth.Role, org_id: int | None = None) -> auth.Principal:
    return auth.Principal(user_id=1, username=role, role=role, org_id=org_id)


def test_stored_moves_to_the_award_each_audited(store: Store) -> None:
    bounty_id, _, uni_id = _seed(store)
    staff = _principal("staff")
    with store.factory() as s:
        bounty = s.get(Bounty, bounty_id)
        assert bounty is not None
        deadline = NOW.date() + timedelta(days=5)
        moves = [
            bl.Move(target=bl.ASSESSING),
            bl.Move(target=bl.PUBLISHED),
            bl.Move(target=bl.OPEN, deadline=deadline),
            bl.Move(target=bl.SCREENING),
            bl.Move(target=bl.REVIEWING),
            bl.Move(target=bl.NEGOTIATING),
            bl.Move(target=bl.AWARDED, award=bl.Award("BID-9", 85.0, 55.0, 30.0)),
            bl.Move(target=bl.NOTICE),
        ]
        for move in moves:
            bl.transition(s, user=staff, bounty=bounty, move=move, now=NOW)
        s.commit()
        # an illegal move is refused and leaves no trace
        with pytest.raises(bl.TransitionRefused, match="不能从“公示”直接变更为“申报中”"):
            bl.transition(s, user=staff, bounty=bounty, move=bl.Move(target=bl.OPEN), now=NOW)
        s.rollback()
    with store.factory() as s:
        bounty = s.get(Bounty, bounty_id)
        assert bounty is not None
        assert (bounty.status, bounty.deadline, bounty.awarded_price) == (
            bl.NOTICE, deadline, 85.0,
        )  # fmt: skip
        winner = s.get(Bid, bounty.awarded_bid_id)
        assert winner is not None and winner.respondent_org_id == uni_id
        assert (winner.funding_enterprise, winner.funding_academic) == (55.0, 30.0)
        assert bounty.noticed_at is not None and bounty.awarded_at is not None
        audit = s.scalars(
            select(AuditLog).where(AuditLog.action == "bounty.transition").order_by(AuditLog.id)
        ).all()
        assert [a.detail["to"] for a in audit] == [m.target for m in moves]
        assert all(a.entity_id == "BT-9" and a.user_id == 1 for a in audit)
        assert audit[6].detail["bid"] == "BID-9" and audit[6].detail["respondent"] == "U1"


def test_stored_roles(store: Store) -> None:
    bounty_id, ent_id, uni_id = _seed(store)
    with store.factory() as s:
        bounty = s.get(Bounty, bounty_id)
        assert bounty is not None
        with pytest.raises(Forbidden):
            bl.transition(
                s, user=_principal("institute", uni_id), bounty=bounty,
                move=bl.Move(target=bl.WITHDRAWN, reason="x"), now=NOW,
            )  # fmt: skip
        with pytest.raises(Forbidden, match="发榜企业"):
            bl.transition(
                s, user=_principal("enterprise", ent_id), bounty=bounty,
                move=bl.Move(target=bl.ASSESSING), now=NOW,
            )  # fmt: skip
        bl.transition(
            s, user=_principal("enterprise", ent_id), bounty=bounty,
            move=bl.Move(target=bl.WITHDRAWN, reason="需求已解决"), now=NOW,
        )  # fmt: skip
        s.commit()
        assert bounty.status == bl.WITHDRAWN
        entry = s.scalar(select(AuditLog).where(AuditLog.action == "bounty.transition"))
        assert entry is not None and entry.detail["reason"] == "需求已解决"


def test_the_migration_maps_the_old_status_values(tmp_path: object) -> None:
    from pathlib import Path

    from alembic import command
    from sqlalchemy import text

    from service.db import alembic_config, make_engine, migrate

    url = f"sqlite:///{Path(str(tmp_path)) / 'm.sqlite3'}"
    migrate(url, BEFORE_LIFECYCLE)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO organisations (external_id, name, kind, in_region, fields, status,"
                " content_hash, created_at, updated_at) VALUES ('E', 'e', 'enterprise', 1, '[]',"
                " 'active', '', '2026-01-01', '2026-01-01')"
            )
        )
        for ext, status in (("B1", "open"), ("B2", "awarded"), ("B3", "closed")):
            conn.execute(
                text(
                    "INSERT INTO bounties (external_id, kind, poster_org_id, title, description,"
                    " status, content_hash, created_at, updated_at) VALUES"
                    " (:e, 'tackle', 1, 't', '', :s, '', '2026-01-01', '2026-01-01')"
                ),
                {"e": ext, "s": status},
            )
    migrate(url)

    def states() -> list[str]:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(text("SELECT status FROM bounties ORDER BY id"))]

    assert states() == [bl.OPEN, bl.AWARDED, bl.COMPLETED]  # 申报中, 已立项, 结项
    command.downgrade(alembic_config(url), BEFORE_LIFECYCLE)
    assert states() == ["open", "awarded", "closed"]
    engine.dispose()


def test_the_api_route_refuses_with_reasons_and_moves(world: World) -> None:
    from fastapi.testclient import TestClient

    from service.main import create_app

    app = create_app(
        world.settings, session_factory=world.factory, recommender=FakeHandle(FakeRecommender())
    )
    url = "/api/v1/bounties/BT-1/transition"
    with TestClient(app) as client:
        staff, poster = bearer(world.keys["staff"]), bearer(world.keys["ent_b"])
        r = client.post(url, json={"to": "awarded"}, headers=staff)
        assert r.status_code == 422 and r.json()["code"] == "illegal_transition"
        assert "不能从“申报中”直接变更为“已立项”" in r.json()["detail"]
        r = client.post(url, json={"to": "withdrawn", "reason": "不需要了"}, headers=poster)
        assert r.status_code == 403 and "发榜企业" in r.json()["detail"]
        r = client.post(url, json={"to": "screening"}, headers=staff)
        assert r.status_code == 200 and r.json()["status"] == "screening"
        r = client.post(url, json={"to": "bogus"}, headers=staff)
        assert r.status_code == 422
        r = client.get("/api/v1/bounties", params={"status": "screening"}, headers=poster)
        assert [b["external_id"] for b in r.json()["items"]] == ["BT-1"]


def test_the_award_marks_the_losing_bids_and_messages_every_applicant(store: Store) -> None:
    bounty_id, _ent_id, uni_id = _seed(store)
    with store.factory() as s:
        others = []
        for ext, name in (("U2", "另一大学"), ("U3", "第三院所"), ("U4", "被取消资格的院所")):
            org = Organisation(external_id=ext, name=name, kind="university", in_region=True)
            s.add(org)
            s.flush()
            others.append(org.id)
            s.add(User(username=f"user-{ext}", role="institute", org_id=org.id))
        s.add(User(username="user-U1", role="institute", org_id=uni_id))
        for n, org_id in enumerate(others, start=2):
            status = "disqualified" if n == 4 else "qualified"
            s.add(Bid(external_id=f"BID-{n}", bounty_id=bounty_id, respondent_org_id=org_id,
                      price=80 + n, status=status))  # fmt: skip
        s.commit()
        bounty = s.get(Bounty, bounty_id)
        assert bounty is not None
        staff = _principal("staff")
        bl.advance(s, user=staff, bounty=bounty, target=bl.NEGOTIATING,
                   deadline=NOW.date() + timedelta(days=3), now=NOW)  # fmt: skip
        assert not s.scalars(select(Message)).all()  # no award yet, no message
        bl.transition(s, user=staff, bounty=bounty,
                      move=bl.Move(target=bl.AWARDED, award=bl.Award("BID-9", 85.0)), now=NOW)  # fmt: skip
        s.commit()
    with store.factory() as s:
        status = dict(s.execute(select(Bid.external_id, Bid.status)).all())
        assert status == {
            "BID-9": "awarded", "BID-2": "not_awarded", "BID-3": "not_awarded",
            "BID-4": "disqualified",
        }  # fmt: skip
        rows = s.execute(
            select(User.username, Message.title).join(User, User.id == Message.user_id)
        ).all()
        inbox = dict(rows)
        assert inbox == {
            "user-U1": "揭榜申报中榜：榜单",
            "user-U2": "揭榜申报未中榜：榜单",
            "user-U3": "揭榜申报未中榜：榜单",
        }
        award = s.scalars(
            select(AuditLog).where(AuditLog.action == "bounty.transition").order_by(AuditLog.id)
        ).all()[-1]
        assert award.detail["to"] == "awarded" and award.detail["not_awarded"] == ["BID-2", "BID-3"]


def test_advance_walks_the_table_and_stops_at_a_refused_step(store: Store) -> None:
    bounty_id, _, _ = _seed(store)
    staff = _principal("staff")
    with store.factory() as s:
        bounty = s.get(Bounty, bounty_id)
        assert bounty is not None
        with pytest.raises(bl.TransitionRefused, match="开始申报前须设定申报截止日期"):
            bl.advance(s, user=staff, bounty=bounty, target=bl.OPEN, now=NOW)
        s.rollback()
        bounty = s.get(Bounty, bounty_id)
        assert bounty is not None and bounty.status == bl.PROPOSED
        with pytest.raises(bl.TransitionRefused, match="不能再推进"):
            bl.advance(s, user=staff, bounty=bounty, target=bl.PROPOSED, now=NOW)
        bl.advance(s, user=staff, bounty=bounty, target=bl.PUBLISHED, now=NOW)
        s.commit()
        audit = s.scalars(select(AuditLog).order_by(AuditLog.id)).all()
        assert [a.detail["to"] for a in audit] == [bl.ASSESSING, bl.PUBLISHED]


def test_the_lifecycle_and_the_input_parsers_know_the_same_states() -> None:
    from service.enums import BOUNTY_STATES

    assert bl.STATES == BOUNTY_STATES


def test_revoking_an_award_needs_staff_and_a_reason() -> None:
    for state in (bl.AWARDED, bl.NOTICE):
        assert bl.NEGOTIATING in bl.allowed_moves(facts(state), STAFF)
        assert bl.action_label(state, bl.NEGOTIATING) == bl.REVOKE_LABEL
        bare = bl.Move(target=bl.NEGOTIATING, reason=" ")
        assert "撤销立项须说明原因" in bl.check_transition(facts(state), bare, STAFF, NOW)[0]
        assert bl.check_transition(facts(state), good_move(bl.NEGOTIATING), STAFF, NOW) == []
        assert bl.check_transition(facts(state), good_move(bl.NEGOTIATING), POSTER, NOW)
    assert bl.action_label(bl.REVIEWING, bl.NEGOTIATING) == "进入洽谈"  # the forward step
    assert bl.check_transition(facts(bl.COMPLETED), good_move(bl.NEGOTIATING), STAFF, NOW)


def test_a_revoked_award_restores_every_bid_and_can_be_made_again(store: Store) -> None:
    bounty_id, _ent_id, uni_id = _seed(store)
    with store.factory() as s:
        other = Organisation(external_id="U2", name="另一大学", kind="university", in_region=True)
        s.add(other)
        s.flush()
        s.add(User(username="user-U1", role="institute", org_id=uni_id))
        s.add(User(username="user-U2", role="institute", org_id=other.id))
        s.add(Bid(external_id="BID-2", bounty_id=bounty_id, respondent_org_id=other.id,
                  price=70, status="qualified", funding_enterprise=40.0))  # fmt: skip
        s.commit()
        bounty = s.get(Bounty, bounty_id)
        assert bounty is not None
        staff = _principal("staff")
        bl.advance(s, user=staff, bounty=bounty, target=bl.NEGOTIATING,
                   deadline=NOW.date() + timedelta(days=3), now=NOW)  # fmt: skip
        award = bl.Award("BID-2", 72.0, funding_enterprise=50.0, funding_academic=22.0)
        for move in (bl.Move(target=bl.AWARDED, award=award), bl.Move(target=bl.NOTICE)):
            bl.transition(s, user=staff, bounty=bounty, move=move, now=NOW)
        s.commit()
        s.query(Message).delete()
        revoke = bl.Move(target=bl.NEGOTIATING, reason="公示期收到异议，经核实报价有误")
        bl.transition(s, user=staff, bounty=bounty, move=revoke, now=NOW)
        s.commit()
    with store.factory() as s:
        bounty = s.get(Bounty, bounty_id)
        assert bounty is not None and bounty.status == bl.NEGOTIATING
        assert (bounty.awarded_bid_id, bounty.awarded_price, bounty.awarded_at) == (None,) * 3
        assert bounty.noticed_at is None
        bids = {b.external_id: b for b in s.scalars(select(Bid)).all()}
        assert {k: b.status for k, b in bids.items()} == {"BID-9": "submitted",
                                                           "BID-2": "qualified"}  # fmt: skip
        assert (bids["BID-2"].funding_enterprise, bids["BID-2"].funding_academic) == (40.0, None)
        rows = s.execute(select(User.username, Message.title, Message.body)
                         .join(User, User.id == Message.user_id)).all()  # fmt: skip
        assert sorted(r[0] for r in rows) == ["user-U1", "user-U2"]
        assert all(r[1] == "榜单立项已撤销：榜单" and "经核实报价有误" in r[2] for r in rows)
        last = s.scalars(select(AuditLog).order_by(AuditLog.id.desc())).first()
        assert last is not None and last.detail["from"] == bl.NOTICE
        assert last.detail["revoked_bid"] == "BID-2" and last.detail["revoked_price"] == 72.0
        # the corrected award goes to the other bid
        bl.transition(s, user=_principal("staff"), bounty=bounty,
                      move=bl.Move(target=bl.AWARDED, award=bl.Award("BID-9", 88.0)), now=NOW)  # fmt: skip
        s.commit()
        assert {b.external_id: b.status for b in s.scalars(select(Bid)).all()} == {
            "BID-9": "awarded", "BID-2": "not_awarded",
        }  # fmt: skip
