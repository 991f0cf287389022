# ruff: noqa: F811  (pytest fixtures imported from tests.service.api_support)
"""申报审核, the staff queue of applications to check: the page and the API change an
application's status through one function (the same reason rule, the same message)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from service.db import session_scope
from service.models import AuditLog, Bid, Message, User
from tests.service.api_support import (  # noqa: F401
    World,
    bearer,
    client,
    handle,
    world,
    world_template,
)

URL = "/portal/staff/applications"


def _card(html: str, bid: str) -> str:
    m = re.search(rf'<li class="card" id="{bid}".*?</li>', html, re.S)
    return m.group(0) if m else ""


def _bid(world: World, ext: str) -> Bid:
    with session_scope(world.factory) as s:
        row = s.scalar(select(Bid).where(Bid.external_id == ext))
        assert row is not None
        s.expunge(row)
        return row


def _inbox(world: World, username: str) -> list[str]:
    with session_scope(world.factory) as s:
        return list(
            s.scalars(
                select(Message.title)
                .join(User, User.id == Message.user_id)
                .where(User.username == username, Message.kind == "application.status")
            )
        )


def test_queue_lists_submitted_applications_oldest_first(client: Any, world: World) -> None:
    r = client.get(URL, headers=bearer(world.keys["staff"]))
    assert r.status_code == 200
    order = re.findall(r'<li class="card" id="(BID-[A-Z])"', r.text)
    assert order == ["BID-A", "BID-U", "BID-B"]
    assert "甲公司方案" in _card(r.text, "BID-A") and "共 3 份" in r.text
    assert client.get(URL, headers=bearer(world.keys["inst_a"])).status_code == 403


def test_staff_qualify_an_application_and_the_applicant_is_told(client: Any, world: World) -> None:
    h = bearer(world.keys["staff"])
    r = client.post(f"{URL}/BID-U", data={"status": "qualified", "note": ""}, headers=h,
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and "done=application_checked" in r.headers["location"]
    assert _bid(world, "BID-U").status == "qualified"
    assert _inbox(world, "inst_a") == ["揭榜申报资格审查通过：糖厂废水揭榜"]
    with session_scope(world.factory) as s:
        link = s.scalar(select(Message.link).where(Message.kind == "application.status"))
        assert link == "/portal/institute/applications#BID-U"
    # it left the queue and shows under 已通过
    assert "BID-U" not in client.get(URL, headers=h).text
    assert _card(client.get(URL, params={"show": "qualified"}, headers=h).text, "BID-U")


def test_disqualifying_needs_a_reason_and_keeps_what_was_typed(client: Any, world: World) -> None:
    h = bearer(world.keys["staff"])
    r = client.post(f"{URL}/BID-A", data={"status": "disqualified", "note": "  "}, headers=h)
    assert r.status_code == 422
    card = _card(r.text, "BID-A")
    assert "请填写资格审查未通过的原因" in card and 'aria-invalid="true"' in card
    assert 'value="disqualified" checked' in card
    assert _bid(world, "BID-A").status == "submitted" and _inbox(world, "ent_a") == []
    r = client.post(f"{URL}/BID-A", data={"status": "", "note": "材料不全"}, headers=h)
    assert r.status_code == 422 and "请选择审查结果" in _card(r.text, "BID-A")
    assert "材料不全</textarea>" in _card(r.text, "BID-A")
    r = client.post(f"{URL}/BID-A", data={"status": "disqualified", "note": "长" * 2001}, headers=h)
    assert r.status_code == 422 and "2000" in _card(r.text, "BID-A")
    r = client.post(f"{URL}/BID-A", data={"status": "disqualified", "note": "缺少资质证明"},
                    headers=h, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    bid = _bid(world, "BID-A")
    assert (bid.status, bid.status_note) == ("disqualified", "缺少资质证明")
    assert len(_inbox(world, "ent_a")) == 1
    with session_scope(world.factory) as s:  # an enterprise applicant has no page to link to
        links = dict(
            s.execute(
                select(Message.kind, Message.link).where(Message.kind == "application.status")
            ).all()
        )
        assert links == {"application.status": None}
    with session_scope(world.factory) as s:
        entry = s.scalar(select(AuditLog).where(AuditLog.action == "application.status"))
        assert entry is not None and entry.detail == {
            "from": "submitted",
            "to": "disqualified",
            "note": "缺少资质证明",
        }


def test_the_api_keeps_the_same_reason_rule(client: Any, world: World) -> None:
    h = bearer(world.keys["staff"])
    r = client.post("/api/v1/applications/BID-B/status", json={"status": "disqualified"}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "note"]
    assert _bid(world, "BID-B").status == "submitted"
    assert (
        client.post(f"{URL}/BID-NOPE", data={"status": "qualified"}, headers=h).status_code == 404
    )


def _nav(html: str) -> str:
    m = re.search(r'<nav class="staff-menu".*?</nav>', html, re.S)
    return m.group(0) if m else ""


def test_staff_menu_is_grouped_and_the_same_on_both_layouts(client: Any, world: World) -> None:
    from service.web.common import STAFF_MENU

    h = bearer(world.keys["staff"])
    pages = {"/staff/campaigns": "活动列表", "/portal/staff/applications": "申报审核"}
    menus = []
    for path, here in pages.items():
        nav = _nav(client.get(path, headers=h).text)
        assert nav.count('<details class="navgroup') == 4 and nav.count('class="navtop') == 1
        assert re.search(rf'class="current" aria-current="page">{here}</a>', nav), path
        plain = re.sub(r' class="current" aria-current="page"| current(?=")', "", nav)
        menus.append(re.sub(r"\s+", " ", plain))
    assert menus[0] == menus[1]  # one menu, whichever layout
    links = re.findall(r'<a (?:class="navtop" )?href="([^"]+)"', menus[0])
    assert len(links) == sum(len(items) for _s, items in STAFF_MENU) == 13
    assert len(set(links)) == len(links) and "/portal/staff/accounts" in links
    assert "/staff/accounts/new" not in links  # the one account page only
    ent = client.get("/portal/needs", headers=bearer(world.keys["ent_a"])).text
    assert _nav(ent) == "" and "申报审核" not in ent
