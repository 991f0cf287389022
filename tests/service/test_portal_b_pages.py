"""Institute, enterprise-bounty and staff pages over HTTP (TestClient, API-key callers): every
form field's bad input is refused with a Chinese message next to the field, what the user
typed is kept, and nothing is written; good input lands in the database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service import auth
from service import models as m
from service.main import create_app
from service.settings import Settings
from tests.service.api_support import FakeHandle, FakeRecommender


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app for the module (building one costs a second on a busy machine); each test
    points it at its own store."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("pages"), secret_key="test-secret-key-0123456789"
    )
    app = create_app(settings, session_factory=object(), recommender=FakeHandle(FakeRecommender()))  # type: ignore[arg-type]
    with TestClient(app, follow_redirects=False) as c:
        yield c


@pytest.fixture
def site(store: Any, tmp_path: Path, client: TestClient) -> Iterator[dict[str, Any]]:
    from service.jobs.campaign_runner import CampaignRunner

    factory = store.factory
    keys: dict[str, str] = {}
    with factory() as s:
        holding = m.Organisation(
            external_id="G", name="柳工集团", kind="enterprise", in_region=True
        )
        s.add(holding)
        s.flush()
        uni = m.Organisation(external_id="U", name="广西大学", kind="university", in_region=True)
        sub = m.Organisation(
            external_id="G-LAB", name="柳工研究院", kind="institute", parent_id=holding.id
        )
        s.add_all([uni, sub])
        s.flush()
        need = m.Need(
            external_id="N1", org_id=holding.id, title="装载机轻量化", description="减重。"
        )
        s.add(need)
        s.flush()
        s.add(
            m.Bounty(
                external_id="BT-1",
                kind="tackle",
                poster_org_id=holding.id,
                need_id=need.id,
                title="结构件轻量化攻关",
                description="降低重量。",
            )
        )
        s.add(
            m.Capability(
                external_id="C1",
                org_id=uni.id,
                kind="achievement",
                title="高强钢成形",
                description="热冲压成形工艺。",
            )
        )
        for name, role, org in [
            ("uni", "institute", uni),
            ("lab", "institute", sub),
            ("ent", "enterprise", holding),
            ("staff", "staff", None),
        ]:
            user = m.User(username=name, role=role, org_id=org.id if org else None)
            s.add(user)
            s.flush()
            key = auth.generate_api_key()
            s.add(m.ApiKey(user_id=user.id, prefix=key.prefix, key_hash=key.key_hash))
            keys[name] = key.key
        s.commit()
    app: Any = client.app
    app.state.session_factory = factory
    app.state.settings = app.state.settings.model_copy(
        update={"database_url": store.url, "data_dir": tmp_path}
    )
    app.state.campaign_runner = CampaignRunner(
        session_factory=factory, recommender=app.state.recommender.get
    )
    client.cookies.clear()
    yield {"client": client, "keys": keys, "factory": factory}


def _as(site: dict[str, Any], who: str) -> dict[str, str]:
    return {"X-API-Key": site["keys"][who]}


def _field_error(html: str, name: str) -> str:
    match = re.search(rf'<p class="field-error" id="e-{name}">([^<]*)</p>', html)
    assert match, f"no error shown for {name}"
    return unescape(match.group(1))


def _count(site: dict[str, Any], model: Any) -> int:
    with site["factory"]() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


CAP_OK = {"kind": "team", "title": "轻量化团队", "description": "车辆结构轻量化设计团队。"}


@pytest.mark.parametrize(
    ("field", "value", "phrase"),
    [
        ("kind", "spaceship", "类别只能是"),
        ("title", "", "请填写名称"),
        ("title", "长" * 301, "最多 300"),
        ("description", "短", "至少 10"),
        ("field", "长" * 65, "最多 64"),
        ("keywords", "、".join(f"k{i}" for i in range(21)), "最多 20"),
        ("trl", "10", "1–9"),
        ("trl", "abc", "整数"),
        ("year", "1800", "年份应在"),
    ],
)
def test_capability_form_rejects_bad_field(
    site: dict[str, Any], field: str, value: str, phrase: str
) -> None:
    before = _count(site, m.Capability)
    form = {**CAP_OK, field: value, "csrf_token": ""}
    r = site["client"].post(
        "/portal/institute/capabilities/new", data=form, headers=_as(site, "uni")
    )
    assert r.status_code == 422
    assert phrase in _field_error(r.text, field)
    if field in ("title", "description") and value:
        assert value[:50] in unescape(r.text)  # what the user typed is kept
    assert 'value="轻量化团队"' in r.text or field == "title"
    assert _count(site, m.Capability) == before


def test_capability_create_edit_retire(site: dict[str, Any]) -> None:
    c, h = site["client"], _as(site, "uni")
    r = c.post("/portal/institute/capabilities/new", data={**CAP_OK, "csrf_token": ""}, headers=h)
    assert r.status_code == 303 and r.headers["location"].endswith("?done=created")
    page = c.get("/portal/institute/capabilities", headers=h)
    assert "轻量化团队" in page.text and "待重新索引" in page.text
    with site["factory"]() as s:
        cap = s.scalar(select(m.Capability).where(m.Capability.title == "轻量化团队"))
        assert cap is not None
        ext = cap.external_id
    edit = {**CAP_OK, "trl": "7", "csrf_token": ""}
    r = c.post(f"/portal/institute/capabilities/{ext}/edit", data=edit, headers=h)
    assert r.status_code == 303
    r = c.post(
        f"/portal/institute/capabilities/{ext}/status",
        data={"action": "retire", "csrf_token": ""},
        headers=h,
    )
    assert r.status_code == 303
    with site["factory"]() as s:
        cap = s.scalar(select(m.Capability).where(m.Capability.external_id == ext))
        assert cap is not None and (cap.trl, cap.status) == (7, "inactive")
    # another organisation's capability cannot be opened or edited
    assert (
        c.get("/portal/institute/capabilities/C1/edit", headers=_as(site, "lab")).status_code == 404
    )
    r = c.post("/portal/institute/capabilities/C1/edit", data=edit, headers=_as(site, "lab"))
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("data", "field", "phrase"),
    [
        ({"proposal": "", "price": "10"}, "proposal", "请填写申报方案"),
        ({"proposal": "方案", "price": "-3"}, "price", "不能小于 0"),
        ({"proposal": "方案", "price": "十万"}, "price", "必须是数字"),
        ({"proposal": "方案", "price": "1e9"}, "price", "不能大于"),
        ({"proposal": "方案", "price": "10", "members": ["NOPE"]}, "members", "名录中没有"),
        ({"proposal": "方案", "price": "10", "members": ["U"]}, "members", "不必列为"),
    ],
)
def test_application_form_rejects_bad_field(
    site: dict[str, Any], data: dict[str, Any], field: str, phrase: str
) -> None:
    form = {**data, "action": "submit", "csrf_token": ""}
    r = site["client"].post(
        "/portal/institute/bounties/BT-1/apply", data=form, headers=_as(site, "uni")
    )
    assert r.status_code == 422
    assert phrase in _field_error(r.text, field)
    if data["proposal"]:
        assert ">方案</textarea>" in r.text
    assert _count(site, m.Bid) == 0


def test_ineligible_application_shows_reason_and_stores_nothing(site: dict[str, Any]) -> None:
    form = {"proposal": "集团内方案", "price": "20", "action": "submit", "csrf_token": ""}
    r = site["client"].post(
        "/portal/institute/bounties/BT-1/apply", data=form, headers=_as(site, "lab")
    )
    assert r.status_code == 422
    assert "申报未被接受" in r.text and "同一集团" in r.text and "本次申报没有保存" in r.text
    assert ">集团内方案</textarea>" in r.text
    assert _count(site, m.Bid) == 0
    # a consortium member of the poster's group is refused too
    form = {**form, "members": ["G-LAB"]}
    r = site["client"].post(
        "/portal/institute/bounties/BT-1/apply", data=form, headers=_as(site, "uni")
    )
    assert r.status_code == 422 and "联合体成员“柳工研究院”" in unescape(r.text)
    assert _count(site, m.Bid) == 0


def test_application_accepted_and_listed(site: dict[str, Any]) -> None:
    c, h = site["client"], _as(site, "uni")
    search = c.post(
        "/portal/institute/bounties/BT-1/apply",
        data={
            "proposal": "热冲压方案",
            "price": "30",
            "member_q": "柳工",
            "action": "search",
            "csrf_token": "",
        },
        headers=h,
    )
    assert (
        search.status_code == 200 and "柳工研究院" in search.text and ">热冲压方案<" in search.text
    )
    form = {"proposal": "热冲压方案", "price": "30", "action": "submit", "csrf_token": ""}
    r = c.post("/portal/institute/bounties/BT-1/apply", data=form, headers=h)
    assert r.status_code == 303
    mine = c.get("/portal/institute/applications", headers=h)
    assert "结构件轻量化攻关" in mine.text and "已提交" in mine.text
    with site["factory"]() as s:
        bid = s.scalar(select(m.Bid))
        assert bid is not None and (bid.price, bid.proposal) == (30.0, "热冲压方案")
    # the poster sees it (no bid id), the ranking stays closed until staff open it
    page = c.get("/portal/bounties/BT-1", headers=_as(site, "ent"))
    assert "广西大学" in page.text and bid.external_id not in page.text
    assert "排名由工作人员评审后开放" in page.text


@pytest.mark.parametrize(
    ("data", "field", "phrase"),
    [
        ({"need": ""}, "need", "请选择"),
        ({"need": "NOPE"}, "need", "本单位"),
        ({"title": ""}, "title", "请填写榜单名称"),
        ({"budget": "-1"}, "budget", "不能小于 0"),
        ({"deadline": "2001-01-01"}, "deadline", "不能早于"),
        ({"deadline": "下周"}, "deadline", "格式"),
    ],
)
def test_bounty_proposal_form_rejects_bad_field(
    site: dict[str, Any], data: dict[str, str], field: str, phrase: str
) -> None:
    form = {"need": "N1", "title": "减重攻关", "description": "详细说明", "csrf_token": "", **data}
    before = _count(site, m.Bounty)
    r = site["client"].post("/portal/bounties/propose", data=form, headers=_as(site, "ent"))
    assert r.status_code == 422
    assert phrase in _field_error(r.text, field)
    assert _count(site, m.Bounty) == before


def test_propose_publish_flow(site: dict[str, Any]) -> None:
    c = site["client"]
    form = {
        "need": "N1",
        "title": "减重攻关",
        "description": "详细说明",
        "budget": "80",
        "csrf_token": "",
    }
    assert (
        c.post("/portal/bounties/propose", data=form, headers=_as(site, "ent")).status_code == 303
    )
    with site["factory"]() as s:
        b = s.scalar(select(m.Bounty).where(m.Bounty.title == "减重攻关"))
        assert b is not None and b.status == "proposed" and b.budget == 80.0
        ext = b.external_id
    # not visible to institutes until published
    assert (
        c.get(f"/portal/institute/bounties/{ext}/apply", headers=_as(site, "uni")).status_code
        == 404
    )
    staff = c.get("/staff/bounty-proposals", headers=_as(site, "staff"))
    assert "减重攻关" in staff.text
    url = f"/staff/bounty-proposals/{ext}/publish"
    # no closing date: the lifecycle refuses to open applications; the error is by the field
    r = c.post(url, data={"csrf_token": ""}, headers=_as(site, "staff"))
    assert r.status_code == 422 and "开始申报前须设定申报截止日期" in r.text
    r = c.post(url, data={"deadline": "明天", "csrf_token": ""}, headers=_as(site, "staff"))
    assert r.status_code == 422 and 'value="明天"' in r.text and "格式应为" in r.text
    with site["factory"]() as s:
        assert s.scalar(select(m.Bounty.status).where(m.Bounty.external_id == ext)) == "proposed"
    closing = (date.today() + timedelta(days=20)).isoformat()
    r = c.post(url, data={"deadline": closing, "csrf_token": ""}, headers=_as(site, "staff"))
    assert r.status_code == 303
    with site["factory"]() as s:
        b = s.scalar(select(m.Bounty).where(m.Bounty.external_id == ext))
        assert b is not None and (b.status, b.deadline.isoformat() if b.deadline else "") == (
            "open",
            closing,
        )
        moves = s.scalars(
            select(m.AuditLog.detail).where(
                m.AuditLog.action == "bounty.transition", m.AuditLog.entity_id == ext
            )
        ).all()
        assert [d["to"] for d in moves] == ["assessing", "published", "open"]
    assert (
        c.get(f"/portal/institute/bounties/{ext}/apply", headers=_as(site, "uni")).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("data", "field", "phrase"),
    [
        ({"name": ""}, "name", "请填写活动名称"),
        ({"name": "长" * 101}, "name", "最多 100"),
        ({"k": "0"}, "k", "1–10"),
        ({"k": "x"}, "k", "整数"),
        ({"capacity": "1000"}, "capacity", "1–100"),
        ({"fair": "2"}, "fair", "求解方式只能是"),
        ({"previous_id": "999"}, "previous_id", "没有这个活动"),
    ],
)
def test_campaign_form_rejects_bad_field(
    site: dict[str, Any], data: dict[str, str], field: str, phrase: str
) -> None:
    form = {"name": "新活动", "k": "1", "capacity": "5", "fair": "0", "csrf_token": "", **data}
    r = site["client"].post("/staff/campaigns/new", data=form, headers=_as(site, "staff"))
    assert r.status_code == 422
    assert phrase in _field_error(r.text, field)
    assert _count(site, m.Campaign) == 0


def test_staff_browsers_filter_and_search(site: dict[str, Any]) -> None:
    c, h = site["client"], _as(site, "staff")
    r = c.get("/staff/needs", params={"q": "装载机"}, headers=h)
    assert r.status_code == 200 and "装载机轻量化" in r.text and "共 1 条" in r.text
    r = c.get("/staff/needs", params={"q": "100%_"}, headers=h)  # wildcards are literal
    assert "共 0 条" in r.text
    r = c.get("/staff/organisations", params={"kind": "university"}, headers=h)
    assert "广西大学" in r.text and "柳工集团" not in r.text
    r = c.get("/staff/organisations", params={"page": "99999999999"}, headers=h)
    assert r.status_code == 200


def test_old_account_address_redirects_to_the_one_account_page(site: dict[str, Any]) -> None:
    c, h = site["client"], _as(site, "staff")
    r = c.get("/staff/accounts/new", params={"q": "大学"}, headers=h, follow_redirects=False)
    assert (
        r.status_code == 303
        and r.headers["location"] == "/portal/staff/accounts?q=%E5%A4%A7%E5%AD%A6"
    )
    assert c.post("/staff/accounts/new", data={"csrf_token": ""}, headers=h).status_code == 405


def test_account_page_finds_organisations_by_name(site: dict[str, Any]) -> None:
    c, h = site["client"], _as(site, "staff")
    r = c.get("/portal/staff/accounts", params={"q": "大学"}, headers=h)
    assert r.status_code == 200
    found = r.text.split('id="found"', 1)[1].split("</table>", 1)[0]
    assert "广西大学" in found and "<code>U</code>" in found and "柳工集团" not in found
    assert 'value="U"' in r.text  # the one match is filled in
    r = c.get("/portal/staff/accounts", params={"q": "100%_"}, headers=h)  # literal wildcards
    assert "没有找到在用的单位" in r.text


def test_account_page_refuses_an_inactive_organisation(site: dict[str, Any]) -> None:
    with site["factory"]() as s:
        s.add(m.Organisation(external_id="OLD", name="已撤销研究所", kind="institute",
                             status="inactive"))  # fmt: skip
        s.commit()
    form = {"username": "old_inst", "role": "institute", "org": "OLD", "csrf_token": ""}
    before = _count(site, m.User)
    r = site["client"].post("/portal/staff/accounts", data=form, headers=_as(site, "staff"))
    assert r.status_code == 422 and "已停用" in r.text and 'value="old_inst"' in r.text
    assert _count(site, m.User) == before
