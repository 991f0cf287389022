# ruff: noqa: F811  (pytest fixtures imported from tests.service.api_support)
"""Portal pages through a browser session: sign-in routed by role, the forced password change,
bad input on every form field (Chinese message next to the field, what was typed kept), and
the enterprise → staff → institute → outcome flow checked in the database."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service import crud
from service.db import session_scope
from service.main import create_app
from service.models import Introduction, Message, Need, User
from service.web.portal_forms import parse_need_form
from tests.service.api_support import (  # noqa: F401
    PASSWORD,
    FakeHandle,
    FakeRecommender,
    World,
    world,
    world_template,
)


@pytest.fixture
def browser(world: World) -> Iterator[TestClient]:
    app = create_app(
        world.settings, session_factory=world.factory, recommender=FakeHandle(FakeRecommender())
    )
    with TestClient(app, follow_redirects=False) as c:
        yield c


def _token(text: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]*)"', text)
    assert m, text[:500]
    return m.group(1)


def login(c: TestClient, username: str, password: str = PASSWORD) -> Any:
    c.cookies.clear()
    token = _token(c.get("/portal/login").text)
    return c.post(
        "/portal/login", data={"username": username, "password": password, "csrf_token": token}
    )


def field_errors(text: str) -> dict[str, str]:
    return {
        k: html.unescape(v)
        for k, v in re.findall(r'class="field-error" id="([\w-]+)-error">([^<]+)<', text)
    }


@pytest.mark.parametrize(
    ("username", "home"),
    [
        ("ent_a", "/portal/needs"),
        ("inst_a", "/portal/institute/introductions"),
        ("staff", "/portal/staff/needs"),
        ("admin", "/portal/staff/needs"),
    ],
)
def test_sign_in_routes_by_role(browser: TestClient, username: str, home: str) -> None:
    r = login(browser, username)
    assert r.status_code == 303 and r.headers["location"] == home
    assert browser.get(home).status_code == 200
    assert login(browser, username, "wrong-password").status_code == 401


def test_next_is_kept_and_only_portal_paths_are_followed(browser: TestClient) -> None:
    r = browser.get("/portal/needs/N-A1")
    assert r.status_code == 303 and "next=%2Fportal%2Fneeds%2FN-A1" in r.headers["location"]
    token = _token(browser.get("/portal/login").text)
    data = {"username": "ent_a", "password": PASSWORD, "csrf_token": token}
    r = browser.post("/portal/login", data={**data, "next": "/portal/needs/N-A1"})
    assert r.headers["location"] == "/portal/needs/N-A1"
    browser.cookies.clear()
    token = _token(browser.get("/portal/login").text)
    r = browser.post("/portal/login", data={**data, "csrf_token": token, "next": "//evil.example"})
    assert r.headers["location"] == "/portal/needs"


def test_first_login_forces_a_password_change(browser: TestClient, world: World) -> None:
    with session_scope(world.factory) as s:
        crud.create_user(
            s,
            username="yjs",
            role="institute",
            org_external_id="INST-1",
            password="initial-1234",
            must_change_password=True,
        )
    r = login(browser, "yjs", "initial-1234")
    assert r.headers["location"] == "/portal/password"
    # Every other page sends the user back to the password form.
    r = browser.get("/portal/institute/introductions")
    assert r.status_code == 303 and r.headers["location"] == "/portal/password"
    page = browser.get("/portal/password")
    assert "初始密码" in page.text
    token = _token(page.text)
    cases = [
        (
            {"current": "nope", "new": "abc12345x", "again": "abc12345x"},
            "current",
            "当前密码不正确",
        ),
        ({"current": "initial-1234", "new": "short1", "again": "short1"}, "new", "至少 8 位"),
        ({"current": "initial-1234", "new": "12345678", "again": "12345678"}, "new", "字母和数字"),
        ({"current": "initial-1234", "new": "initial-1234", "again": "x"}, "new", "不能与当前"),
        ({"current": "initial-1234", "new": "abc12345x", "again": "abc12345y"}, "again", "不一致"),
    ]
    for form, name, text in cases:
        r = browser.post("/portal/password", data={**form, "csrf_token": token})
        assert r.status_code == 422 and text in field_errors(r.text)[name], (form, r.text[:300])
    r = browser.post(
        "/portal/password",
        data={"current": "initial-1234", "new": "my-secret-99", "again": "my-secret-99"},
    )
    assert r.status_code == 403  # no CSRF token
    r = browser.post(
        "/portal/password",
        data={
            "current": "initial-1234",
            "new": "my-secret-99",
            "again": "my-secret-99",
            "csrf_token": token,
        },
    )
    assert r.status_code == 303 and r.headers["location"].endswith("?done=password")
    assert browser.get("/portal/institute/introductions").status_code == 200
    with session_scope(world.factory) as s:
        assert not crud.get_user(s, username="yjs").must_change_password
    assert login(browser, "yjs", "initial-1234").status_code == 401
    assert login(browser, "yjs", "my-secret-99").headers["location"].startswith("/portal/")


GOOD = {
    "title": "铝合金压铸件缺陷检测",
    "description": "需要在线检测铝合金压铸件内部气孔缺陷的方法",
    "field": "智能制造",
    "keywords": "铝合金、X射线",
    "budget": "50",
    "deadline": "",
}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("title", "", "请填写需求标题"),
        ("title", "题" * 101, "不能超过 100 字"),
        ("description", "太短", "至少 10 个字"),
        ("description", "长" * 5001, "不能超过 5000 字"),
        ("field", "领" * 65, "技术领域过长"),
        ("keywords", "、".join(f"词{i}" for i in range(21)), "最多 20 个"),
        ("keywords", "词" * 31, "不能超过 30 字"),
        ("budget", "-1", "不能小于0"),
        ("budget", "很多", "不是数字"),
        ("budget", "2000000", "不能超过"),
        ("deadline", "2020-01-01", "不能早于今天"),
        ("deadline", "明天", "格式无法识别"),
        ("deadline", "2999-01-01", "不能晚于"),
    ],
)
def test_need_form_rejects_bad_input_and_keeps_it(
    browser: TestClient, world: World, name: str, value: str, message: str
) -> None:
    login(browser, "ent_a")
    token = _token(browser.get("/portal/needs/new").text)
    form = {**GOOD, name: value, "csrf_token": token, "confidential": "1"}
    r = browser.post("/portal/needs/new", data=form)
    assert r.status_code == 422
    assert message in field_errors(r.text)[name]
    assert set(field_errors(r.text)) == {name}
    # What the user typed is still there (the other fields too), and nothing was stored.
    other = "description" if name == "title" else "title"
    assert html.escape(value[:60], quote=True) in r.text and GOOD[other] in r.text
    assert 'name="confidential" value="1" checked' in r.text
    with session_scope(world.factory) as s:
        assert s.scalar(select(Need).where(Need.title == GOOD["title"])) is None


def test_need_form_parser_bounds() -> None:
    today = date(2026, 12, 1)
    ok = parse_need_form({**GOOD, "budget": "1,200万元", "deadline": "2027年3月1日"}, today=today)
    assert ok.ok and ok.data["budget"] == 1200.0 and ok.data["deadline"] == date(2027, 3, 1)
    assert ok.data["keywords"] == ["铝合金", "X射线"] and ok.data["confidential"] is False
    assert parse_need_form({**GOOD, "deadline": today.isoformat()}, today=today).ok
    late = (today - timedelta(days=1)).isoformat()
    assert "deadline" in parse_need_form({**GOOD, "deadline": late}, today=today).errors
    controls = parse_need_form({**GOOD, "title": "ＡＢＣ\x00标题"}, today=today)
    assert controls.data["title"] == "ABC标题"  # the service's one text cleaner


def test_enterprise_flow_through_the_pages(browser: TestClient, world: World) -> None:
    login(browser, "ent_a")
    token = _token(browser.get("/portal/needs/new").text)
    r = browser.post("/portal/needs/new", data={**GOOD, "csrf_token": token})
    assert r.status_code == 303
    page = browser.get(r.headers["location"])
    assert "待审核" in page.text and "需求已提交" in page.text
    with session_scope(world.factory) as s:
        need = s.scalar(select(Need).where(Need.title == GOOD["title"]))
        assert need is not None and need.review_status == "pending"
        ext = need.external_id
    # Suggestions wait for vetting; another enterprise cannot see the need at all.
    assert "通过审核后" in browser.get(f"/portal/needs/{ext}/suggestions").text
    login(browser, "ent_b")
    assert browser.get(f"/portal/needs/{ext}").status_code == 404
    assert browser.get(f"/portal/needs/{ext}/edit").status_code == 404
    # Staff return it with a reason; the enterprise reads it on the need and in the inbox.
    login(browser, "staff")
    queue = browser.get("/portal/staff/needs")
    assert GOOD["title"] in queue.text
    r = browser.post(
        f"/portal/staff/needs/{ext}",
        data={"action": "return", "reason": "请补充指标", "csrf_token": _token(queue.text)},
    )
    assert r.status_code == 303
    login(browser, "ent_a")
    page = browser.get(f"/portal/needs/{ext}")
    assert "请补充指标" in page.text and "已退回" in page.text
    inbox = browser.get("/portal/messages")
    assert "需求被退回" in inbox.text and 'class="unread"' in inbox.text
    # The edit (keeps its values in the form) goes back to vetting.
    edit = browser.get(f"/portal/needs/{ext}/edit")
    assert GOOD["description"] in edit.text
    r = browser.post(
        f"/portal/needs/{ext}/edit",
        data={
            **GOOD,
            "description": GOOD["description"] + "，检出率 99%",
            "csrf_token": _token(edit.text),
        },
    )
    assert r.status_code == 303 and r.headers["location"].endswith("done=need_saved")
    with session_scope(world.factory) as s:
        row = s.scalar(select(Need).where(Need.external_id == ext))
        assert row is not None and row.review_status == "pending" and "99%" in row.description
    # Withdraw: gone from matching, no more edits.
    r = browser.post(f"/portal/needs/{ext}/withdraw", data={"csrf_token": _token(edit.text)})
    assert r.status_code == 303
    assert browser.get(f"/portal/needs/{ext}/edit").status_code == 409


def test_introduction_pages_and_answers(browser: TestClient, world: World) -> None:
    login(browser, "ent_a")
    page = browser.get("/portal/needs/N-A1/suggestions")
    assert page.status_code == 200 and "轻量化铝合金成形" in page.text  # evidence: cap title
    token = _token(page.text)
    long_msg = "合作" * 251
    r = browser.post(
        "/portal/needs/N-A1/introductions",
        data={"institute": "ENT-B", "message": "x", "csrf_token": token},
    )
    assert r.status_code == 422 and "不能接受对接申请" in r.text
    with session_scope(world.factory) as s:  # UNI-1 has A's accepted request: ask INST-1 anew
        s.execute(Introduction.__table__.delete())
    page = browser.get("/portal/needs/N-A1/suggestions")
    r = browser.post(
        "/portal/needs/N-A1/introductions",
        data={"institute": "INST-1", "message": long_msg, "csrf_token": token},
    )
    assert r.status_code == 422 and "不能超过 500 字" in r.text and long_msg in r.text
    r = browser.post(
        "/portal/needs/N-A1/introductions",
        data={"institute": "INST-1", "message": "希望合作", "csrf_token": token},
    )
    assert r.status_code == 303
    with session_scope(world.factory) as s:
        intro = s.scalar(select(Introduction))
        assert intro is not None and intro.status == "submitted" and intro.message == "希望合作"
        iid = intro.id
    # Not forwarded yet: INST-1 sees nothing; staff forward; INST-1 declines without a reason
    # (refused, typed text kept), then accepts.
    login(browser, "inst_b")
    assert "希望合作" not in browser.get("/portal/institute/introductions").text
    login(browser, "staff")
    token = _token(browser.get("/portal/staff/introductions").text)
    browser.post(
        f"/portal/staff/introductions/{iid}", data={"action": "forward", "csrf_token": token}
    )
    login(browser, "inst_a")
    assert "希望合作" not in browser.get("/portal/institute/introductions").text
    login(browser, "inst_b")
    page = browser.get("/portal/institute/introductions")
    assert "希望合作" in page.text and "甲公司" in page.text
    token = _token(page.text)
    r = browser.post(
        f"/portal/institute/introductions/{iid}",
        data={"action": "decline", "message": "", "csrf_token": token},
    )
    assert r.status_code == 422 and "请填写婉拒理由" in field_errors(r.text).get(
        f"answer-{iid}", ""
    )
    r = browser.post(
        f"/portal/institute/introductions/{iid}",
        data={"action": "accept", "message": "欢迎来访", "csrf_token": token},
    )
    assert r.status_code == 303
    login(browser, "ent_a")
    token = _token(browser.get("/portal/introductions").text)
    r = browser.post(
        f"/portal/introductions/{iid}/outcome",
        data={"outcome": "failed", "reason": "", "csrf_token": token},
    )
    assert r.status_code == 422 and "请填写原因" in r.text
    r = browser.post(
        f"/portal/introductions/{iid}/outcome",
        data={"outcome": "signed", "reason": "签订技术开发合同", "csrf_token": token},
    )
    assert r.status_code == 303
    with session_scope(world.factory) as s:
        intro = s.get(Introduction, iid)
        assert intro is not None and intro.status == "signed"
        assert intro.outcome_reason == "签订技术开发合同"
        kinds = {m.kind for m in s.scalars(select(Message))}
    assert {"intro.requested", "intro.forwarded", "intro.accepted", "intro.signed"} <= kinds


def test_inbox_marks_read_and_follows_the_link(browser: TestClient, world: World) -> None:
    login(browser, "ent_a")
    page = browser.get("/portal/needs")
    assert re.search(r'class="unread"[^>]*>1<', page.text)
    token = _token(page.text)
    r = browser.post(f"/portal/messages/{world.ids['msg_a']}/read", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/portal/needs"
    assert 'class="unread"' not in browser.get("/portal/needs").text
    login(browser, "ent_b")  # another user's message: 404, still unread for nobody else
    token = _token(browser.get("/portal/messages").text)
    r = browser.post(f"/portal/messages/{world.ids['msg_a']}/read", data={"csrf_token": token})
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("form", "name", "message"),
    [
        ({"username": "a b", "role": "institute", "org": "INST-1"}, "username", "字母、数字"),
        ({"username": "ent_a", "role": "institute", "org": "INST-1"}, "username", "已被使用"),
        ({"username": "yuan1", "role": "admin", "org": "INST-1"}, "role", "请选择账号类型"),
        ({"username": "yuan1", "role": "institute", "org": ""}, "org", "请填写单位编号"),
        ({"username": "yuan1", "role": "institute", "org": "NOPE"}, "org", "找不到"),
        ({"username": "yuan1", "role": "institute", "org": "ENT-A"}, "org", "不能开通院所用户"),
        ({"username": "yuan1", "role": "enterprise", "org": "UNI-1"}, "org", "不是企业"),
    ],
)
def test_staff_account_form_rejects_bad_input(
    browser: TestClient, world: World, form: dict[str, str], name: str, message: str
) -> None:
    login(browser, "staff")
    token = _token(browser.get("/portal/staff/accounts").text)
    r = browser.post("/portal/staff/accounts", data={**form, "csrf_token": token})
    assert r.status_code == 422 and message in field_errors(r.text)[name]
    assert html.escape(form["username"]) in r.text  # typed values kept
    with session_scope(world.factory) as s:
        assert s.scalar(select(User).where(User.username == "yuan1")) is None


def test_staff_opens_an_institute_account(browser: TestClient, world: World) -> None:
    login(browser, "staff")
    token = _token(browser.get("/portal/staff/accounts").text)
    r = browser.post(
        "/portal/staff/accounts",
        data={"username": "yuan1", "role": "institute", "org": "INST-1", "csrf_token": token},
    )
    assert r.status_code == 200
    m = re.search(r"<strong>yuan1</strong> 的初始密码：<code>([^<]+)</code>", r.text)
    assert m, r.text[:2000]
    with session_scope(world.factory) as s:
        row = s.scalar(select(User).where(User.username == "yuan1"))
        assert row is not None and row.role == "institute" and row.must_change_password
        assert row.org is not None and row.org.external_id == "INST-1"
    r = login(browser, "yuan1", html.unescape(m.group(1)))
    assert r.headers["location"] == "/portal/password"
