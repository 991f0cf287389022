"""Staff pages through the real app with TestClient over a real temporary SQLite database."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select

from matcher.types import Exclusion, RankedOrgs, Suggestion
from service import auth
from service.models import AuditLog, ShortlistItem
from service.web.export import excel_safe
from service.web.views import evidence_entries as _evidence_entries
from service.web.views import highlight
from tests.service._webseed import (
    ENTERPRISE_PASSWORD,
    ENTERPRISE_USER,
    STAFF_PASSWORD,
    STAFF_USER,
    World,
    build_app,
    seed,
)


@pytest.fixture()
def world(tmp_path: Path) -> World:
    return seed(f"sqlite:///{tmp_path / 'web.sqlite3'}", tmp_path)


@pytest.fixture()
def client(world: World) -> Iterator[TestClient]:
    with TestClient(build_app(world.settings), follow_redirects=False) as c:
        yield c


def _hidden(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert m is not None, f"no hidden field {name}"
    return m.group(1)


def login(client: TestClient, username: str, password: str) -> TestClient:
    page = client.get("/staff/login")
    assert page.status_code == 200
    r = client.post(
        "/staff/login",
        data={
            "username": username,
            "password": password,
            "csrf_token": _hidden(page.text, "csrf_token"),
        },
    )
    assert r.status_code == 303, r.text
    return client


def _item(world: World, item_id: int) -> ShortlistItem:
    with world.factory() as db:
        item = db.get(ShortlistItem, item_id)
        assert item is not None
        return item


def _form(client: TestClient, world: World, item_id: int) -> dict[str, str]:
    """The decision form of one row as the page renders it (csrf, version, return query)."""
    html = client.get(f"/staff/campaigns/{world.campaign_id}").text
    row = html[html.index(f'id="item-{item_id}"') :]
    row = row[: row.index("</tr>")]
    return {
        "csrf_token": _hidden(row, "csrf_token"),
        "version": _hidden(row, "version"),
        "return_query": _hidden(row, "return_query"),
    }


# --- authentication -----------------------------------------------------------------------


def test_anonymous_is_redirected_to_login_with_next(client: TestClient) -> None:
    r = client.get("/staff/campaigns")
    assert r.status_code == 303
    assert "/staff/login?next=%2Fstaff%2Fcampaigns" in r.headers["location"]


def test_login_page_is_chinese_and_sets_double_submit_cookie(client: TestClient) -> None:
    r = client.get("/staff/login")
    assert '<html lang="zh-CN">' in r.text
    assert "工作人员登录" in r.text
    assert r.cookies.get(auth.LOGIN_CSRF_COOKIE) == _hidden(r.text, "csrf_token")


def test_login_sets_httponly_lax_session_cookie(client: TestClient) -> None:
    page = client.get("/staff/login?next=/staff/bounties")
    r = client.post(
        "/staff/login",
        data={
            "username": STAFF_USER,
            "password": STAFF_PASSWORD,
            "csrf_token": _hidden(page.text, "csrf_token"),
            "next": _hidden(page.text, "next"),
        },
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/staff/bounties"
    set_cookie = [v for k, v in r.headers.multi_items() if k == "set-cookie"]
    session = next(c for c in set_cookie if c.startswith(auth.SESSION_COOKIE + "="))
    assert "HttpOnly" in session
    assert "samesite=lax" in session.lower()


def test_wrong_password_and_missing_csrf_are_refused(client: TestClient) -> None:
    page = client.get("/staff/login")
    token = _hidden(page.text, "csrf_token")
    bad = client.post(
        "/staff/login", data={"username": STAFF_USER, "password": "nope", "csrf_token": token}
    )
    assert bad.status_code == 401
    assert "用户名或密码错误" in bad.text
    assert auth.SESSION_COOKIE not in bad.cookies
    no_csrf = client.post("/staff/login", data={"username": STAFF_USER, "password": STAFF_PASSWORD})
    assert no_csrf.status_code == 403
    assert auth.SESSION_COOKIE not in no_csrf.cookies


def test_login_ignores_offsite_next(client: TestClient) -> None:
    page = client.get("/staff/login?next=//evil.example/x")
    assert _hidden(page.text, "next") == ""


def test_enterprise_api_key_gets_403_on_every_staff_page(client: TestClient, world: World) -> None:
    headers = {"X-API-Key": world.enterprise_key}
    for path in (
        "/staff/campaigns",
        f"/staff/campaigns/{world.campaign_id}",
        f"/staff/campaigns/{world.campaign_id}/export.xlsx",
        "/staff/bounties",
        f"/staff/bounties/{world.bounty_id}",
    ):
        r = client.get(path, headers=headers)
        assert r.status_code == 403, path
        assert "仅限科技厅工作人员" in r.text
    bearer = client.get(
        "/staff/campaigns", headers={"Authorization": f"Bearer {world.enterprise_key}"}
    )
    assert bearer.status_code == 403
    post = client.post(
        f"/staff/campaigns/{world.campaign_id}/items/{world.item_ids[0]}",
        headers=headers,
        data={"action": "approve", "version": "1"},
    )
    assert post.status_code == 403
    assert _item(world, world.item_ids[0]).status == "pending"


def test_enterprise_login_gets_403(client: TestClient) -> None:
    login(client, ENTERPRISE_USER, ENTERPRISE_PASSWORD)
    r = client.get("/staff/campaigns")
    assert r.status_code == 403
    assert "无权访问" in r.text
    assert "活动列表" not in r.text  # no staff navigation
    # The enterprise user can still sign out from the 403 page (valid CSRF token).
    out = client.post("/staff/logout", data={"csrf_token": _hidden(r.text, "csrf_token")})
    assert out.status_code == 303
    assert client.get("/staff/campaigns").status_code == 303  # signed out: back to login


def test_invalid_api_key_is_401(client: TestClient) -> None:
    r = client.get("/staff/campaigns", headers={"X-API-Key": "dj_00000000_notarealkeyatall123"})
    assert r.status_code == 401


def test_logout_needs_csrf_and_ends_the_session(client: TestClient) -> None:
    login(client, STAFF_USER, STAFF_PASSWORD)
    page = client.get("/staff/campaigns")
    assert page.status_code == 200
    assert client.post("/staff/logout", data={"csrf_token": "forged"}).status_code == 403
    r = client.post("/staff/logout", data={"csrf_token": _hidden(page.text, "csrf_token")})
    assert r.status_code == 303
    assert client.get("/staff/campaigns").status_code == 303


# --- pages --------------------------------------------------------------------------------


def test_campaign_list_shows_review_counts(client: TestClient, world: World) -> None:
    login(client, STAFF_USER, STAFF_PASSWORD)
    r = client.get("/staff/campaigns")
    assert r.status_code == 200
    assert "2026年春季结对子" in r.text
    assert f'href="/staff/campaigns/{world.campaign_id}"' in r.text  # relative: proxy-safe
    counts = re.findall(r'<td class="num" data-label="[^"]+">(\d+)</td>', r.text)
    assert counts[:4] == ["2", "0", "0", "1"]  # pending, approved, rejected, uncovered


def test_shortlist_shows_pairs_highlighted_evidence_and_problems(
    client: TestClient, world: World
) -> None:
    login(client, STAFF_USER, STAFF_PASSWORD)
    r = client.get(f"/staff/campaigns/{world.campaign_id}")
    assert r.status_code == 200
    html = r.text
    for name in ("广西甘糖科技有限公司", "广西大学轻工与食品工程学院", "柳州新材料有限公司"):
        assert name in html
    assert "<mark>希望利用甘蔗渣制备生物基可降解材料,降低废弃物处理成本。</mark>" in html
    assert "<mark>开发了以甘蔗渣为原料制备可降解包装材料的工艺。</mark>" in html
    assert "我们生产甘蔗糖。" in html  # context around the highlighted sentence
    assert "覆盖问题:候选机构名额已满" in html
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert "style=" not in html and "<script" not in html
    assert 'name="version" value="1"' in html
    # The uncovered row offers only a note, no approve button.
    uncovered = html[html.index(f'id="item-{world.item_ids[2]}"') :]
    uncovered = uncovered[: uncovered.index("</tr>")]
    assert 'value="approve"' not in uncovered


def test_approve_persists_audits_and_bumps_version(client: TestClient, world: World) -> None:
    login(client, STAFF_USER, STAFF_PASSWORD)
    item_id = world.item_ids[0]
    r = client.post(
        f"/staff/campaigns/{world.campaign_id}/items/{item_id}",
        data={**_form(client, world, item_id), "action": "approve"},
    )
    assert r.status_code == 303
    assert r.headers["location"].endswith(f"done=approve#item-{item_id}")
    item = _item(world, item_id)
    assert (item.status, item.version, item.decided_by) == ("approved", 2, world.staff_id)
    assert item.decided_at is not None
    with world.factory() as db:
        audit = db.scalars(select(AuditLog).where(AuditLog.action == "shortlist.approve")).one()
    assert audit.user_id == world.staff_id
    assert audit.entity_id == str(item_id)
    assert audit.detail["before"]["status"] == "pending"
    assert audit.detail["version"] == 2
    page = client.get(r.headers["location"].split("#")[0])
    assert "已通过该配对" in page.text


def test_stale_version_is_a_409_conflict_and_never_overwrites(
    client: TestClient, world: World
) -> None:
    login(client, STAFF_USER, STAFF_PASSWORD)
    item_id = world.item_ids[0]
    stale = _form(client, world, item_id)
    first = client.post(
        f"/staff/campaigns/{world.campaign_id}/items/{item_id}",
        data={**stale, "action": "approve"},
    )
    assert first.status_code == 303
    second = client.post(
        f"/staff/campaigns/{world.campaign_id}/items/{item_id}",
        data={**stale, "action": "reject"},
    )
    assert second.status_code == 409
    assert "冲突:该条目已被他人修改(您看到的是第 1 版,当前为第 2 版)" in second.text
    assert "您的操作未保存" in second.text
    item = _item(world, item_id)
    assert (item.status, item.version) == ("approved", 2)
    with world.factory() as db:
        actions = db.scalars(
            select(AuditLog.action).where(
                AuditLog.entity == "shortlist_item", AuditLog.entity_id == str(item_id)
            )
        )
        assert list(actions) == ["shortlist.approve"]


def test_forged_csrf_is_refused(client: TestClient, world: World) -> None:
    login(client, STAFF_USER, STAFF_PASSWORD)
    item_id = world.item_ids[0]
    form = _form(client, world, item_id)
    r = client.post(
        f"/staff/campaigns/{world.campaign_id}/items/{item_id}",
        data={**form, "csrf_token": "forged", "action": "approve"},
    )
    assert r.status_code == 403
    assert _item(world, item_id).status == "pending"


def test_lock_note_reject_rules(client: TestClient, world: World) -> None:
    login(client, STAFF_USER, STAFF_PASSWORD)
    item_id = world.item_ids[0]
    url = f"/staff/campaigns/{world.campaign_id}/items/{item_id}"
    assert (
        client.post(url, data={**_form(client, world, item_id), "action": "lock"}).status_code
        == 303
    )
    refused = client.post(url, data={**_form(client, world, item_id), "action": "reject"})
    assert refused.status_code == 409
    assert "请先解锁" in refused.text
    note = client.post(
        url, data={**_form(client, world, item_id), "action": "note", "note": "  已电话确认  "}
    )
    assert note.status_code == 303
    item = _item(world, item_id)
    assert (item.locked, item.status, item.note, item.version) == (True, "pending", "已电话确认", 3)
    unc = world.item_ids[2]
    r = client.post(
        f"/staff/campaigns/{world.campaign_id}/items/{unc}",
        data={**_form(client, world, unc), "action": "approve"},
    )
    assert r.status_code == 409
    assert _item(world, unc).status == "pending"
    bad = client.post(url, data={**_form(client, world, item_id), "action": "delete"})
    assert bad.status_code == 422


def test_filters_by_status_field_and_score(client: TestClient, world: World) -> None:
    login(client, STAFF_USER, STAFF_PASSWORD)
    base = f"/staff/campaigns/{world.campaign_id}"
    high = client.get(base, params={"min_score": "0.5"}).text
    assert "广西甘糖科技有限公司" in high and "南宁智造装备有限公司" not in high
    field = client.get(base, params={"field": "装备制造"}).text
    assert "南宁智造装备有限公司" in field and "广西甘糖科技有限公司" not in field
    item_id = world.item_ids[1]
    client.post(
        f"{base}/items/{item_id}", data={**_form(client, world, item_id), "action": "reject"}
    )
    rejected = client.get(base, params={"status": "rejected"}).text
    assert "南宁智造装备有限公司" in rejected and "广西甘糖科技有限公司" not in rejected


def test_export_xlsx_neutralises_formulas_and_respects_filters(
    client: TestClient, world: World
) -> None:
    login(client, STAFF_USER, STAFF_PASSWORD)
    r = client.get(f"/staff/campaigns/{world.campaign_id}/export.xlsx")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    ws = load_workbook(io.BytesIO(r.content))["配对名单"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:5] == ("条目ID", "企业", "需求", "领域", "建议机构")
    assert len(rows) == 4
    by_name = {row[1]: row for row in rows[1:]}
    assert by_name["南宁智造装备有限公司"][11] == '\'=HYPERLINK("http://x")'
    assert by_name["广西甘糖科技有限公司"][7] == pytest.approx(0.83)
    with world.factory() as db:
        audit = db.scalars(select(AuditLog).where(AuditLog.action == "shortlist.export")).one()
    assert (audit.user_id, audit.entity_id, audit.detail["rows"]) == (
        world.staff_id,
        str(world.campaign_id),
        3,
    )
    filtered = client.get(f"/staff/campaigns/{world.campaign_id}/export.xlsx?min_score=0.5")
    assert len(list(load_workbook(io.BytesIO(filtered.content)).active.iter_rows())) == 2


def test_bounty_page_without_index_says_not_ready(client: TestClient, world: World) -> None:
    login(client, STAFF_USER, STAFF_PASSWORD)
    listing = client.get("/staff/bounties")
    assert "甘蔗渣可降解材料攻关" in listing.text
    r = client.get(f"/staff/bounties/{world.bounty_id}")
    assert r.status_code == 200
    assert "索引未就绪" in r.text
    assert "桂林电子科技大学机电学院" in r.text  # bids are still listed
    assert "广西大学轻工与食品工程学院" in r.text  # consortium member name


def test_unknown_campaign_is_404(client: TestClient) -> None:
    login(client, STAFF_USER, STAFF_PASSWORD)
    assert client.get("/staff/campaigns/9999").status_code == 404


def test_static_css_served_without_traversal(client: TestClient) -> None:
    assert client.get("/staff/static/staff.css").status_code == 200
    assert client.get("/staff/static/..%2Fweb.py").status_code == 404


# --- helpers ------------------------------------------------------------------------------


def test_highlight_escapes_and_marks() -> None:
    text = "前言<script>alert(1)</script>。匹配的句子。后记"
    html = str(highlight(text, "匹配的句子。", window=100))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "<mark>匹配的句子。</mark>" in html
    clipped = str(highlight("a" * 50 + "命中" + "b" * 50, "命中", window=5))
    assert clipped == "…aaaaa<mark>命中</mark>bbbbb…"
    assert (
        str(highlight("其他内容", "<b>不在原文</b>")) == "<mark>&lt;b&gt;不在原文&lt;/b&gt;</mark>"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [("=1+1", "'=1+1"), ("+86", "'+86"), ("-x", "'-x"), ("@SUM", "'@SUM"), ("正常", "正常"),
     (-0.5, -0.5), (None, None)],
)  # fmt: skip
def test_excel_safe(value: object, expected: object) -> None:
    assert excel_safe(value) == expected


def test_repeated_failed_logins_are_throttled(client: TestClient) -> None:
    page = client.get("/staff/login")
    data = {
        "username": STAFF_USER,
        "password": "wrong",
        "csrf_token": _hidden(page.text, "csrf_token"),
    }
    codes = [client.post("/staff/login", data=data).status_code for _ in range(12)]
    assert codes[0] == 401
    assert codes[-1] == 429
    right = client.post("/staff/login", data={**data, "password": STAFF_PASSWORD})
    assert right.status_code == 429
    assert "登录失败次数过多" in right.text


class _FakeRecommender:
    """Scores I1 for the bounty; I2 leads a consortium whose member breaks the group rule."""

    sentence_encoder = None

    def __init__(self) -> None:
        self.calls: list[dict[str, object]] = []

    def respondents_for_bounty(self, bounty: object, k: int = 10, **kw: object) -> RankedOrgs:
        self.calls.append({"bounty": bounty, "k": k, **kw})
        best = () if kw.get("candidates") else (Suggestion(org_id="X9", score=1.8, rank=1),)
        return RankedOrgs(
            suggestions=(*best, Suggestion(org_id="I1", score=0.9, rank=len(best) + 1)),
            excluded=(Exclusion(org_id="I2", code="SAME_GROUP", member_id="I1", score=0.7),),
        )


class _Handle:
    def __init__(self, rec: _FakeRecommender) -> None:
        self.rec = rec

    def get(self) -> _FakeRecommender:
        return self.rec

    def status(self) -> dict[str, object]:
        return {"ready": True}


def test_bounty_page_ranks_bids_with_breakdown_and_exclusions(world: World) -> None:
    rec = _FakeRecommender()
    with TestClient(
        build_app(world.settings, recommender=_Handle(rec)), follow_redirects=False
    ) as c:
        login(c, STAFF_USER, STAFF_PASSWORD)
        html = c.get(f"/staff/bounties/{world.bounty_id}").text
    assert "索引未就绪" not in html
    bids = html[html.index('id="bids"') : html.index("</table>", html.index('id="bids"'))]
    rows = bids.split("<tr")[2:]  # skip the header row
    assert "广西大学轻工与食品工程学院" in rows[0] and ">1</td>" in rows[0]
    # The only eligible bid sets the price benchmark (低价基准法), so its price score is 1.
    # Affinity is relative to the best candidate (X9, 1.8, recommended but not bidding).
    assert "相对匹配度:0.500" in rows[0] and "价格得分:1.000" in rows[0]
    assert "桂林电子科技大学机电学院" in rows[1] and "不符合:同一集团(上下级)" in rows[1]
    excluded = html[html.index('id="excluded"') :]
    assert "同一集团(上下级)(联合体成员 广西大学轻工与食品工程学院)" in excluded
    bidder_call = next(call for call in rec.calls if "candidates" in call)
    assert bidder_call["candidates"] == {"I1", "I2"}
    assert bidder_call["members"] == {"I1": [], "I2": ["I1"]}


def test_evidence_formats_are_normalised() -> None:
    doc = {"doc_id": "C1", "doc_snippet": "句子。", "query_snippet": "需求。"}
    runner = {"documents": [doc], "shared_keywords": ["甘蔗渣"], "reasons": []}
    assert _evidence_entries(runner) == [{**doc, "shared_keywords": ["甘蔗渣"]}]
    assert _evidence_entries({"evidence": [doc]}) == [doc]
    assert _evidence_entries([doc, "junk"]) == [doc]
    assert _evidence_entries(doc) == [doc]
    assert _evidence_entries({"other": 1}) == []
    assert _evidence_entries(None) == []


def test_shortlist_pages(client: TestClient, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("service.web.campaigns.PAGE_SIZE", 2)
    login(client, STAFF_USER, STAFF_PASSWORD)
    base = f"/staff/campaigns/{world.campaign_id}"
    first = client.get(base, params={"max_score": "1"}).text
    assert "第 1 / 2 页(共 3 条)" not in first  # max_score drops the unscored uncovered row
    first = client.get(base).text
    assert "第 1 / 2 页(共 3 条)" in first
    assert 'href="?page=2"' in first
    second = client.get(base, params={"page": "2"}).text
    assert first.count('class="actions"') == 2 and second.count('class="actions"') == 1


def _first_item_row(client: TestClient, world: World) -> str:
    """The campaign page's row of the first shortlist item, as staff see it."""
    login(client, STAFF_USER, STAFF_PASSWORD)
    html = client.get(f"/staff/campaigns/{world.campaign_id}").text
    row = html[html.index(f'id="item-{world.item_ids[0]}"') :]
    return row[: row.index("</tr>")]


def test_runner_evidence_is_found_in_context(client: TestClient, world: World) -> None:
    """The campaign runner's format: prefixed index keys, no query doc id, no need id."""
    with world.factory() as db:
        item = db.get(ShortlistItem, world.item_ids[0])
        assert item is not None
        item.need_id = None
        item.evidence = {
            "documents": [
                {
                    "doc_id": "C:C1",
                    "score": 0.9,
                    "query_snippet": "年产量约十万吨。",
                    "doc_snippet": "已完成中试。",
                }
            ],
            "shared_keywords": ["甘蔗渣"],
        }
        db.commit()
    row = _first_item_row(client, world)
    assert "降低废弃物处理成本。<mark>年产量约十万吨。</mark>" in row
    assert "成果《甘蔗渣可降解材料》" in row
    assert "<mark>已完成中试。</mark>" in row
    assert "需求:甘蔗渣高值化利用" in row
    assert "共同关键词:甘蔗渣" in row


def test_evidence_without_text_is_not_an_empty_bullet(client: TestClient, world: World) -> None:
    """An entry with no snippet and no keyword is left out; the entry beside it stays."""
    with world.factory() as db:
        item = db.get(ShortlistItem, world.item_ids[0])
        assert item is not None
        item.evidence = [
            {"doc_id": "C:C1", "score": 0.4, "query_snippet": "", "doc_snippet": ""},
            {"doc_id": "C:C1", "score": 0.9, "query_snippet": "", "doc_snippet": "已完成中试。"},
        ]
        db.commit()
    row = _first_item_row(client, world)
    assert "<mark>已完成中试。</mark>" in row
    assert row.count("<li>") == 1


def test_running_and_failed_campaigns_are_explained(client: TestClient, world: World) -> None:
    from service.models import Campaign

    with world.factory() as db:
        db.add(Campaign(name="运行中的活动", status="running", progress=0.4))
        db.add(Campaign(name="失败的活动", status="failed", error="索引未就绪"))
        db.commit()
        running_id = db.scalars(select(Campaign.id).where(Campaign.status == "running")).one()
    login(client, STAFF_USER, STAFF_PASSWORD)
    listing = client.get("/staff/campaigns").text
    assert '<meta http-equiv="refresh" content="10">' in listing
    assert "失败的活动" in listing and "索引未就绪" in listing
    page = client.get(f"/staff/campaigns/{running_id}").text
    assert "活动运行中(进度 40%)" in page
    done = client.get(f"/staff/campaigns/{world.campaign_id}").text
    assert "http-equiv" not in done
