# ruff: noqa: F811  (pytest fixtures imported from tests.service.api_support)
"""Authorization matrix: every route × every role (anonymous, enterprise A, enterprise B,
institute A, institute B, staff, admin), each on a fresh copy of the fixture database.

The routes are enumerated from the app, so a route added without a MATRIX entry fails
``test_every_route_has_a_matrix_entry``. Every response to an enterprise is also checked for
the other enterprise's private strings (need ids/titles, bid ids), and every response to an
institute for the enterprises' and the other institute's: none may ever appear.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from service import auth
from service.main import create_app
from tests.service.api_support import (  # noqa: F401 (fixtures)
    INSTITUTE_PRIVATE,
    PASSWORD,
    PRIVATE,
    FakeHandle,
    FakeRecommender,
    World,
    bearer,
    world,
    world_template,
)

ROLES = ("anon", "ent_a", "ent_b", "inst_a", "inst_b", "staff", "admin")
Expect = dict[str, int | tuple[int, ...]]


def everyone(code: int, anon: int = 401) -> Expect:
    return {
        "anon": anon,
        "ent_a": code,
        "ent_b": code,
        "inst_a": code,
        "inst_b": code,
        "staff": code,
        "admin": code,
    }


def staff_only(code: int) -> Expect:
    return {**everyone(403), "anon": 401, "staff": code, "admin": code}


def admin_only(code: int) -> Expect:
    return {**everyone(403), "anon": 401, "admin": code}


def owner_a(code: int) -> Expect:
    """Enterprise A's own resource: B and the institutes get 404 (existence not revealed)."""
    return {**everyone(404), "anon": 401, "ent_a": code, "staff": code, "admin": code}


def roles(default: int, **codes: int | tuple[int, ...]) -> Expect:
    """``default`` for every role except those named (``anon=401`` unless given)."""
    return {**everyone(default), "anon": 401, **codes}


# Staff HTML pages (service/web/): anonymous browsers are redirected to the login page,
# enterprise and institute credentials are refused, staff/admin API keys are admitted.
def page(code: int = 200) -> Expect:
    return {**everyone(403), "anon": 303, "staff": code, "admin": code}


# Portal pages: enterprise pages admit enterprise users, institute pages institute users;
# anonymous browsers go to the login page, everyone else gets the 403 page.
def ent_page(a: int | tuple[int, ...] = 200, b: int | tuple[int, ...] = 200) -> Expect:
    return {**everyone(403), "anon": 303, "ent_a": a, "ent_b": b}


def inst_page(a: int | tuple[int, ...] = 200, b: int | tuple[int, ...] | None = None) -> Expect:
    """inst_a belongs to UNI-1 (owner of C-U1, bidder BID-U), inst_b to INST-1."""
    return {**everyone(403), "anon": 303, "inst_a": a, "inst_b": a if b is None else b}


def portal(code: int, *admitted: str, other: int = 403) -> Expect:
    """A portal page (service/web/portal_*.py): anonymous browsers go to the sign-in page,
    ``admitted`` roles get ``code``, every other role ``other``."""
    return {**everyone(other), "anon": 303, **dict.fromkeys(admitted, code)}


ENT = ("ent_a", "ent_b")
INST = ("inst_a", "inst_b")
STAFF = ("staff", "admin")


def _portal_need(role: str, _w: World) -> dict[str, Any]:
    return {"title": f"新需求{role}", "description": "需要一种铝合金轮毂的轻量化成形工艺"}


Body = dict[str, Any] | Callable[[str, World], dict[str, Any]] | None


@dataclass
class Case:
    path: str | Callable[[World], str]
    expect: Expect
    json: Body = None
    data: Body = None
    params: dict[str, Any] = field(default_factory=dict)


def _org(role: str, _w: World) -> dict[str, Any]:
    return {"external_id": f"ORG-{role}", "name": f"新单位{role}", "kind": "institute"}


def _need(role: str, _w: World) -> dict[str, Any]:
    return {"external_id": f"N-{role}", "org_external_id": "ENT-A", "title": "新需求"}


def _cap(role: str, _w: World) -> dict[str, Any]:
    return {
        "external_id": f"C-{role}",
        "org_external_id": "UNI-1",
        "kind": "team",
        "title": "新团队",
        "description": "面向新材料的科研团队介绍。",
    }


def _user(role: str, _w: World) -> dict[str, Any]:
    return {"username": f"new-{role}", "role": "staff"}


MATRIX: dict[str, Case] = {
    "GET /healthz": Case("/healthz", everyone(200, anon=200)),
    "GET /metrics": Case("/metrics", staff_only(200)),
    "GET /api/v1/openapi.json": Case("/api/v1/openapi.json", everyone(200)),
    "GET /api/v1/docs": Case("/api/v1/docs", everyone(200)),
    "POST /api/v1/auth/login": Case(
        "/api/v1/auth/login",
        everyone(200, anon=200),
        json={"username": "staff", "password": PASSWORD},
    ),
    "POST /api/v1/auth/logout": Case("/api/v1/auth/logout", everyone(204)),
    "GET /api/v1/auth/me": Case("/api/v1/auth/me", everyone(200)),
    "POST /api/v1/auth/password": Case(  # wrong current password: 422 with the field message
        "/api/v1/auth/password",
        everyone(422),
        json={"current": "wrong", "new": "abc12345x", "again": "abc12345x"},
    ),
    # --- introductions and inbox (service/api/routes/introductions.py, messages.py) ---
    "GET /api/v1/introductions": Case("/api/v1/introductions", everyone(200)),
    "POST /api/v1/introductions": Case(  # A's confidential need N-A2, to UNI-1
        "/api/v1/introductions",
        roles(403, ent_a=201, ent_b=404, staff=201, admin=201),
        json={"need_external_id": "N-A2", "institute_external_id": "UNI-1", "message": "合作"},
    ),
    "GET /api/v1/introductions/{intro_id}": Case(  # A → INST-1, forwarded
        lambda w: f"/api/v1/introductions/{w.ids['intro_a_fwd']}",
        roles(404, ent_a=200, inst_b=200, staff=200, admin=200),
    ),
    "POST /api/v1/introductions/{intro_id}/actions": Case(  # B → UNI-1, submitted: forward
        lambda w: f"/api/v1/introductions/{w.ids['intro_b_sub']}/actions",
        roles(404, ent_b=403, staff=200, admin=200),
        json={"action": "forward", "note": "请联系"},
    ),
    "GET /api/v1/messages": Case("/api/v1/messages", everyone(200)),
    "POST /api/v1/messages/{message_id}/read": Case(
        lambda w: f"/api/v1/messages/{w.ids['msg_a']}/read", roles(404, ent_a=200)
    ),
    "POST /api/v1/messages/read-all": Case("/api/v1/messages/read-all", everyone(200)),
    "GET /api/v1/organisations": Case("/api/v1/organisations", everyone(200)),
    "POST /api/v1/organisations": Case("/api/v1/organisations", staff_only(201), json=_org),
    "GET /api/v1/organisations/{external_id}": Case("/api/v1/organisations/ENT-A", owner_a(200)),
    "PATCH /api/v1/organisations/{external_id}": Case(
        "/api/v1/organisations/ENT-A", staff_only(200), json={"city": "桂林"}
    ),
    "GET /api/v1/needs": Case("/api/v1/needs", everyone(200)),
    "POST /api/v1/needs": Case(  # the body names ENT-A: B may not create needs for A
        "/api/v1/needs", roles(403, ent_a=201, ent_b=404, staff=201, admin=201), json=_need
    ),
    "GET /api/v1/needs/{external_id}": Case("/api/v1/needs/N-A2", owner_a(200)),
    "PATCH /api/v1/needs/{external_id}": Case(
        "/api/v1/needs/N-A1",
        roles(403, ent_a=200, ent_b=404, staff=200, admin=200),
        json={"status": "matched"},
    ),
    "POST /api/v1/needs/{external_id}/review": Case(  # N-A1 is approved already: 409
        "/api/v1/needs/N-A1/review", staff_only(409), json={"action": "approve"}
    ),
    "GET /api/v1/capabilities": Case("/api/v1/capabilities", everyone(200)),
    "POST /api/v1/capabilities": Case(  # _cap is UNI-1's: inst_a's own organisation
        "/api/v1/capabilities", roles(403, inst_a=201, staff=201, admin=201), json=_cap
    ),
    "GET /api/v1/capabilities/{external_id}": Case("/api/v1/capabilities/C-U1", everyone(200)),
    "PATCH /api/v1/capabilities/{external_id}": Case(
        "/api/v1/capabilities/C-U1",
        roles(403, inst_a=200, inst_b=404, staff=200, admin=200),
        json={"trl": 6},
    ),
    "POST /api/v1/suggestions": Case(
        "/api/v1/suggestions", owner_a(200), json={"need_id": "N-A1", "k": 5}
    ),
    "POST /api/v1/match": Case("/api/v1/match", everyone(200), json={"text": "废水处理技术"}),
    "POST /api/v1/pair-scores": Case(
        "/api/v1/pair-scores",
        owner_a(200),
        json={"pairs": [{"need_id": "N-A1", "org_id": "UNI-1"}]},
    ),
    "GET /api/v1/bounties": Case("/api/v1/bounties", everyone(200)),
    "GET /api/v1/bounties/{external_id}": Case("/api/v1/bounties/BT-1", everyone(200)),
    "GET /api/v1/bounties/{external_id}/bids": Case("/api/v1/bounties/BT-1/bids", everyone(200)),
    "GET /api/v1/bounties/{external_id}/respondents": Case(
        "/api/v1/bounties/BT-1/respondents",  # B posted BT-1
        roles(200, ent_a=404, inst_a=404, inst_b=404),
    ),
    "GET /api/v1/bounties/{external_id}/bid-ranking": Case(
        "/api/v1/bounties/BT-1/bid-ranking", staff_only(200)
    ),
    "POST /api/v1/bounties/{external_id}/transition": Case(  # B posted BT-1 but may only
        "/api/v1/bounties/BT-1/transition",  # withdraw it before applications open
        roles(403, staff=200, admin=200),
        json={"to": "screening"},
    ),
    # the public notice (公示): with health, the only pages open to anonymous visitors
    "GET /notice": Case("/notice", everyone(200, anon=200)),
    "GET /notice/{bounty_id}": Case(  # BT-1 is not awarded: not public, 404 for everyone
        lambda w: f"/notice/{w.ids['bounty']}", everyone(404, anon=404)
    ),
    "GET /staff/dashboard": Case("/staff/dashboard", page()),
    "GET /staff/dashboard.xlsx": Case("/staff/dashboard.xlsx", page()),
    "POST /staff/bounties/{bounty_id}/transition": Case(
        lambda w: f"/staff/bounties/{w.ids['bounty']}/transition",
        page(303),
        data={"to": "screening", "csrf_token": ""},
    ),
    # --- applications (揭榜申报) and bounty proposals (service/applications.py) ---
    "POST /api/v1/bounties/{external_id}/applications": Case(
        "/api/v1/bounties/BT-1/applications",  # A already applied; B is the poster
        roles(403, ent_a=409, ent_b=422, inst_a=409, inst_b=201),  # UNI-1 applied already
        json={"proposal": "新方案", "price": 10, "members": []},
    ),
    "GET /api/v1/bounties/{external_id}/applications": Case(
        "/api/v1/bounties/BT-1/applications",
        roles(404, ent_b=200, staff=200, admin=200),
    ),
    "POST /api/v1/bounties/proposals": Case(
        "/api/v1/bounties/proposals",
        roles(403, ent_a=201, ent_b=404),
        json={"need_external_id": "N-A1", "title": "轮毂攻关", "description": "轻量化铝合金轮毂"},
    ),
    "POST /api/v1/bounties/{external_id}/publish": Case(
        "/api/v1/bounties/BT-1/publish",
        staff_only(409),  # BT-1 is already published
    ),
    "POST /api/v1/bounties/{external_id}/open-ranking": Case(
        "/api/v1/bounties/BT-1/open-ranking", staff_only(200)
    ),
    "GET /api/v1/applications": Case("/api/v1/applications", roles(200, staff=403, admin=403)),
    "POST /api/v1/applications/{bid_external_id}/status": Case(
        "/api/v1/applications/BID-A/status", staff_only(200), json={"status": "qualified"}
    ),
    "GET /api/v1/campaigns": Case("/api/v1/campaigns", staff_only(200)),
    "POST /api/v1/campaigns": Case(
        "/api/v1/campaigns", staff_only(201), json=lambda r, _w: {"name": f"活动-{r}"}
    ),
    "GET /api/v1/campaigns/{campaign_id}": Case(
        lambda w: f"/api/v1/campaigns/{w.ids['campaign']}", staff_only(200)
    ),
    "POST /api/v1/campaigns/{campaign_id}/run": Case(
        lambda w: f"/api/v1/campaigns/{w.ids['fresh_campaign']}/run", staff_only(202)
    ),
    "POST /api/v1/campaigns/{campaign_id}/cancel": Case(
        lambda w: f"/api/v1/campaigns/{w.ids['fresh_campaign']}/cancel", staff_only(200)
    ),
    "GET /api/v1/campaigns/{campaign_id}/result": Case(
        lambda w: f"/api/v1/campaigns/{w.ids['campaign']}/result", staff_only(200)
    ),
    "GET /api/v1/shortlists": Case("/api/v1/shortlists", staff_only(200)),
    "GET /api/v1/shortlists/{item_id}": Case(
        lambda w: f"/api/v1/shortlists/{w.ids['item_b']}", staff_only(200)
    ),
    "POST /api/v1/shortlists/{item_id}/decision": Case(
        lambda w: f"/api/v1/shortlists/{w.ids['item_b']}/decision",
        staff_only(200),
        json={"action": "approve", "version": 1},
    ),
    "GET /api/v1/audit": Case("/api/v1/audit", staff_only(200)),
    "GET /api/v1/index/status": Case("/api/v1/index/status", staff_only(200)),
    "POST /api/v1/index/reindex": Case("/api/v1/index/reindex", admin_only(202)),
    "GET /api/v1/users": Case("/api/v1/users", admin_only(200)),
    "POST /api/v1/users": Case("/api/v1/users", admin_only(201), json=_user),
    "POST /api/v1/users/{user_id}/keys": Case(
        lambda w: f"/api/v1/users/{w.user_ids['ent_b']}/keys", admin_only(201)
    ),
    "POST /api/v1/users/{user_id}/revoke": Case(
        lambda w: f"/api/v1/users/{w.user_ids['ent_b']}/revoke", admin_only(200)
    ),
    "POST /api/v1/users/{user_id}/sessions/revoke": Case(
        lambda w: f"/api/v1/users/{w.user_ids['ent_b']}/sessions/revoke", admin_only(200)
    ),
    # --- staff pages (owned by service/web/; authorization checked here as well) ---
    "GET /staff/static/{name}": Case("/staff/static/staff.css", everyone(200, anon=200)),
    "GET /staff/login": Case("/staff/login", everyone(200, anon=200)),
    "POST /staff/login": Case(  # no login CSRF cookie: refused for everyone
        "/staff/login",
        everyone(403, anon=403),
        data={"username": "staff", "password": PASSWORD, "csrf_token": "x"},
    ),
    "POST /staff/logout": Case("/staff/logout", everyone(303, anon=303), data={"csrf_token": "x"}),
    "GET /staff/": Case("/staff/", everyone(303, anon=303)),
    "GET /staff": Case("/staff", everyone(303, anon=303)),
    "GET /staff/campaigns": Case("/staff/campaigns", page()),
    "GET /staff/campaigns/{campaign_id}": Case(
        lambda w: f"/staff/campaigns/{w.ids['campaign']}", page()
    ),
    "POST /staff/campaigns/{campaign_id}/items/{item_id}": Case(
        lambda w: f"/staff/campaigns/{w.ids['campaign']}/items/{w.ids['item_b']}",
        page((200, 303)),
        data={"action": "approve", "version": "1", "csrf_token": ""},
    ),
    "GET /staff/campaigns/{campaign_id}/export.xlsx": Case(
        lambda w: f"/staff/campaigns/{w.ids['campaign']}/export.xlsx", page()
    ),
    "GET /staff/bounties": Case("/staff/bounties", page()),
    # --- portal pages (service/web/portal_*.py) ---
    "GET /portal/login": Case("/portal/login", everyone(200, anon=200)),
    "POST /portal/login": Case(  # no login CSRF cookie: refused for everyone
        "/portal/login",
        everyone(403, anon=403),
        data={"username": "ent_a", "password": PASSWORD, "csrf_token": "x"},
    ),
    "POST /portal/logout": Case("/portal/logout", everyone(303, anon=303), data={"csrf_token": ""}),
    "GET /portal/": Case("/portal/", everyone(303, anon=303)),
    "GET /portal": Case("/portal", everyone(303, anon=303)),
    "GET /portal/password": Case("/portal/password", portal(200, *ENT, *INST, *STAFF)),
    "POST /portal/password": Case(  # wrong current password: the form comes back (422)
        "/portal/password",
        portal(422, *ENT, *INST, *STAFF),
        data={"current": "wrong", "new": "abc12345x", "again": "abc12345x"},
    ),
    "GET /portal/needs": Case("/portal/needs", portal(200, *ENT)),
    "GET /portal/needs/new": Case("/portal/needs/new", portal(200, *ENT)),
    "POST /portal/needs/new": Case("/portal/needs/new", portal(303, *ENT), data=_portal_need),
    "GET /portal/needs/{external_id}": Case(
        "/portal/needs/N-A1", {**portal(200, "ent_a"), "ent_b": 404}
    ),
    "GET /portal/needs/{external_id}/edit": Case(
        "/portal/needs/N-A1/edit", {**portal(200, "ent_a"), "ent_b": 404}
    ),
    "POST /portal/needs/{external_id}/edit": Case(
        "/portal/needs/N-A1/edit", {**portal(303, "ent_a"), "ent_b": 404}, data=_portal_need
    ),
    "POST /portal/needs/{external_id}/withdraw": Case(
        "/portal/needs/N-A1/withdraw", {**portal(303, "ent_a"), "ent_b": 404}, data={}
    ),
    "GET /portal/needs/{external_id}/suggestions": Case(
        "/portal/needs/N-A1/suggestions", {**portal(200, "ent_a"), "ent_b": 404}
    ),
    "POST /portal/needs/{external_id}/introductions": Case(
        "/portal/needs/N-A2/introductions",  # A's confidential need, to UNI-1
        {**portal(303, "ent_a"), "ent_b": 404},
        data={"institute": "UNI-1", "message": "希望合作"},
    ),
    "GET /portal/introductions": Case("/portal/introductions", portal(200, *ENT)),
    "POST /portal/introductions/{intro_id}/outcome": Case(
        lambda w: f"/portal/introductions/{w.ids['intro_a_neg']}/outcome",
        {**portal(303, "ent_a", *STAFF), "ent_b": 404},
        data={"outcome": "signed"},
    ),
    "GET /portal/institute/introductions": Case(
        "/portal/institute/introductions", portal(200, *INST)
    ),
    "POST /portal/institute/introductions/{intro_id}": Case(
        lambda w: f"/portal/institute/introductions/{w.ids['intro_a_fwd']}",  # to INST-1
        {**portal(303, "inst_b"), "inst_a": 404},
        data={"action": "accept", "message": "欢迎来访"},
    ),
    "GET /portal/staff/needs": Case("/portal/staff/needs", portal(200, *STAFF)),
    "POST /portal/staff/needs/{external_id}": Case(  # N-A1 is approved already: 422 page
        "/portal/staff/needs/N-A1", portal(422, *STAFF), data={"action": "approve"}
    ),
    "GET /portal/staff/introductions": Case("/portal/staff/introductions", portal(200, *STAFF)),
    "POST /portal/staff/introductions/{intro_id}": Case(
        lambda w: f"/portal/staff/introductions/{w.ids['intro_b_sub']}",
        portal(303, *STAFF),
        data={"action": "forward"},
    ),
    "GET /portal/staff/applications": Case("/portal/staff/applications", portal(200, *STAFF)),
    "POST /portal/staff/applications/{bid_external_id}": Case(
        "/portal/staff/applications/BID-A",
        portal(303, *STAFF),
        data={"status": "qualified", "note": "材料齐全"},
    ),
    "GET /portal/staff/accounts": Case("/portal/staff/accounts", portal(200, *STAFF)),
    "POST /portal/staff/accounts": Case(
        "/portal/staff/accounts",
        portal(200, *STAFF),
        data=lambda r, _w: {"username": f"yuan-{r}", "role": "institute", "org": "INST-1"},
    ),
    "POST /portal/staff/accounts/{user_id}/reset": Case(
        lambda w: f"/portal/staff/accounts/{w.user_ids['ent_b']}/reset", portal(200, *STAFF)
    ),
    "GET /portal/messages": Case("/portal/messages", portal(200, *ENT, *INST, *STAFF)),
    "POST /portal/messages/{message_id}/read": Case(
        lambda w: f"/portal/messages/{w.ids['msg_a']}/read",
        {**portal(404, *ENT, *INST, *STAFF), "ent_a": 303},
        data={},
    ),
    "POST /portal/messages/read-all": Case(
        "/portal/messages/read-all", portal(303, *ENT, *INST, *STAFF), data={}
    ),
    "GET /staff/bounties/{bounty_id}": Case(lambda w: f"/staff/bounties/{w.ids['bounty']}", page()),
    # --- staff browsers, campaign form, bounty proposals (service/web/staff_*.py) ---
    "GET /staff/needs": Case("/staff/needs", page(), params={"q": "需求", "page": "1"}),
    "GET /staff/organisations": Case("/staff/organisations", page(), params={"kind": "university"}),
    "GET /staff/campaigns/new": Case("/staff/campaigns/new", page()),
    "POST /staff/campaigns/new": Case(
        "/staff/campaigns/new",
        page(303),
        data=lambda r, _w: {"name": f"表单活动-{r}", "k": "1", "capacity": "5", "csrf_token": ""},
    ),
    "GET /staff/campaigns/{campaign_id}/progress": Case(
        lambda w: f"/staff/campaigns/{w.ids['campaign']}/progress", page()
    ),
    "GET /staff/accounts/new": Case(  # the old address: 303 to /portal/staff/accounts
        "/staff/accounts/new", page(303), params={"q": "研究所"}
    ),
    "GET /staff/bounty-proposals": Case("/staff/bounty-proposals", page()),
    "POST /staff/bounty-proposals/{external_id}/{action}": Case(
        "/staff/bounty-proposals/BT-1/open-ranking", page(303), data={"csrf_token": ""}
    ),
    # --- enterprise bounty pages (service/web/portal_bounties.py); B posted BT-1 ---
    "GET /portal/bounties": Case("/portal/bounties", ent_page()),
    "GET /portal/bounties/propose": Case("/portal/bounties/propose", ent_page()),
    "POST /portal/bounties/propose": Case(
        "/portal/bounties/propose",
        ent_page(303, 422),  # N-A1 is A's need
        data={"need": "N-A1", "title": "轮毂攻关", "description": "轻量化", "csrf_token": ""},
    ),
    "GET /portal/bounties/{external_id}": Case("/portal/bounties/BT-1", ent_page(404, 200)),
    # --- institute pages (service/web/portal_institute.py) ---
    "GET /portal/institute/capabilities": Case("/portal/institute/capabilities", inst_page()),
    "GET /portal/institute/capabilities/new": Case(
        "/portal/institute/capabilities/new", inst_page()
    ),
    "POST /portal/institute/capabilities/new": Case(
        "/portal/institute/capabilities/new",
        inst_page(303),
        data={
            "kind": "team",
            "title": "新团队",
            "description": "一个研究团队的介绍。",
            "csrf_token": "",
        },
    ),
    "GET /portal/institute/capabilities/{external_id}/edit": Case(
        "/portal/institute/capabilities/C-U1/edit", inst_page(200, 404)
    ),
    "POST /portal/institute/capabilities/{external_id}/edit": Case(
        "/portal/institute/capabilities/C-U1/edit",
        inst_page(303, 404),
        data={
            "kind": "achievement",
            "title": "轻量化铝合金成形",
            "description": "铝合金轮毂低压铸造工艺。",
            "csrf_token": "",
        },
    ),
    "POST /portal/institute/capabilities/{external_id}/status": Case(
        "/portal/institute/capabilities/C-U1/status",
        inst_page(303, 404),
        data={"action": "retire", "csrf_token": ""},
    ),
    "GET /portal/institute/needs": Case("/portal/institute/needs", inst_page()),
    "GET /portal/institute/bounties": Case("/portal/institute/bounties", inst_page()),
    "GET /portal/institute/bounties/{external_id}/apply": Case(
        "/portal/institute/bounties/BT-1/apply", inst_page()
    ),
    "POST /portal/institute/bounties/{external_id}/apply": Case(
        "/portal/institute/bounties/BT-1/apply",
        inst_page(409, 303),  # UNI-1 applied already
        data={"proposal": "方案", "price": "10", "action": "submit", "csrf_token": ""},
    ),
    "GET /portal/institute/applications": Case("/portal/institute/applications", inst_page()),
    # guideline pages (service/web/guideline.py): unknown run ids answer 404 to staff
    "GET /staff/guideline": Case("/staff/guideline", page()),
    "POST /staff/guideline": Case(
        "/staff/guideline", page(422), data={"round": "", "csrf_token": ""}
    ),
    "GET /staff/guideline/{run_id}": Case("/staff/guideline/999999", page(404)),
    "POST /staff/guideline/{run_id}/directions/{direction_id}": Case(
        "/staff/guideline/999999/directions/1",
        page(404),
        data={"action": "drop", "version": "1", "csrf_token": ""},
    ),
    "POST /staff/guideline/{run_id}/merge": Case(
        "/staff/guideline/999999/merge", page(404), data={"csrf_token": ""}
    ),
    "POST /staff/guideline/{run_id}/duplicates/{pair_id}": Case(
        "/staff/guideline/999999/duplicates/1",
        page(404),
        data={"action": "merge", "csrf_token": ""},
    ),
    "GET /staff/guideline/{run_id}/export.xlsx": Case(
        "/staff/guideline/999999/export.xlsx", page(404)
    ),
}


def app_routes() -> set[str]:
    app = create_app(world_settings_placeholder())
    keys = set()
    for ctx in iter_route_contexts(app.routes):
        for method in ctx.methods or ():
            if method != "HEAD":
                keys.add(f"{method} {ctx.path}")
    return keys


def world_settings_placeholder() -> Any:
    from service.settings import Settings

    return Settings(secret_key="matrix-enumeration-only")


def test_every_route_has_a_matrix_entry() -> None:
    routes = app_routes()
    missing = sorted(routes - set(MATRIX))
    stale = sorted(set(MATRIX) - routes)
    assert not missing, f"routes without an authorization-matrix entry: {missing}"
    assert not stale, f"matrix entries for routes that no longer exist: {stale}"


@pytest.fixture
def reindex_stub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("service.api.routes.index.run_reindex", lambda settings, **_: "build-stub")


def _body(b: Body, role: str, w: World) -> dict[str, Any] | None:
    return b(role, w) if callable(b) else b


@pytest.fixture(scope="module")
def shared_client(world_template: World) -> Any:
    """One app for the whole matrix (building an app costs ~0.3 s); each case points it at a
    fresh copy of the database and fresh per-app state."""
    app = create_app(
        world_template.settings,
        session_factory=world_template.factory,
        recommender=FakeHandle(FakeRecommender()),
    )
    with TestClient(app, follow_redirects=False) as client:
        yield client


def _reset(app: Any, w: World) -> None:
    from service.api.routes.auth import LoginThrottle
    from service.api.routes.index import ReindexState
    from service.jobs.campaign_runner import CampaignRunner

    handle = FakeHandle(FakeRecommender())
    app.state.session_factory = w.factory
    app.state.settings = w.settings
    app.state.recommender = handle
    app.state.campaign_runner = CampaignRunner(session_factory=w.factory, recommender=handle.get)
    app.state.reindex = ReindexState()
    app.state.login_throttle = LoginThrottle()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", sorted(MATRIX))
def test_matrix(
    route: str,
    role: str,
    world: World,
    reindex_stub: None,
    shared_client: Any,
) -> None:
    case = MATRIX[route]
    method = route.split(" ", 1)[0]
    path = case.path(world) if callable(case.path) else case.path
    headers = bearer(world.keys[role]) if role != "anon" else {}
    client = shared_client
    client.cookies.clear()
    _reset(client.app, world)
    r = client.request(
        method,
        path,
        headers=headers,
        params=case.params,
        json=_body(case.json, role, world),
        data=_body(case.data, role, world),
    )
    runner = client.app.state.campaign_runner
    for cid in (world.ids["campaign"], world.ids["fresh_campaign"]):
        runner.wait(cid, timeout=10)
    if client.app.state.reindex.thread is not None:
        client.app.state.reindex.thread.join(10)
    want = case.expect[role]
    allowed = want if isinstance(want, tuple) else (want,)
    assert r.status_code in allowed, f"{route} as {role}: {r.status_code} {r.text[:300]}"
    assert r.status_code < 500
    if r.status_code >= 400 and r.headers.get("content-type", "").startswith("application/json"):
        assert {"detail", "code"} <= set(r.json())
    if role in ("ent_a", "ent_b", "inst_a", "inst_b"):
        if role in INSTITUTE_PRIVATE:
            private = INSTITUTE_PRIVATE[role]
        else:
            private = PRIVATE["ent_b" if role == "ent_a" else "ent_a"]
        text = r.content.decode("utf-8", errors="replace")
        # Others' ids may be echoed only if the caller sent them (404 detail).
        sent = path + json.dumps(_body(case.json, role, world), ensure_ascii=False)
        sent += json.dumps(_body(case.data, role, world), ensure_ascii=False)
        # Whole tokens only: a fresh id such as BID-A3F0… is not the private BID-A.
        leaked = [s for s in private if _contains_token(text, s) and s not in sent]
        assert not leaked, f"{route} as {role} leaked {leaked}"


def _contains_token(text: str, token: str) -> bool:
    """``token`` occurs in ``text`` not as part of a longer ASCII id."""
    return re.search(rf"(?<![0-9A-Za-z_-]){re.escape(token)}(?![0-9A-Za-z_-])", text) is not None


def test_session_cookie_is_not_a_bypass(world: World) -> None:
    """An enterprise with a password gets no more through a session than with its key."""
    from service import crud
    from service.db import session_scope

    with session_scope(world.factory) as s:
        crud.set_password(s, user=crud.get_user(s, username="ent_a"), password=PASSWORD)
    app = create_app(
        world.settings, session_factory=world.factory, recommender=FakeHandle(FakeRecommender())
    )
    with TestClient(app, follow_redirects=False) as client:
        r = client.post("/api/v1/auth/login", json={"username": "ent_a", "password": PASSWORD})
        assert r.status_code == 200
        csrf = {auth.CSRF_HEADER: r.json()["csrf_token"]}
        assert client.get("/api/v1/needs").json()["total"] == 2
        assert client.get("/api/v1/audit").status_code == 403
        assert client.post("/api/v1/index/reindex", headers=csrf).status_code == 403
        assert client.get("/staff/campaigns").status_code == 403
        assert client.get("/api/v1/needs/N-B1").status_code == 404


def test_matrix_covers_the_schema(world: World) -> None:
    """Every operation in the OpenAPI schema is in the matrix (schema and routes agree)."""
    app = create_app(
        world.settings, session_factory=world.factory, recommender=FakeHandle(FakeRecommender())
    )
    ops = {f"{m.upper()} {p}" for p, item in app.openapi()["paths"].items() for m in item}
    assert ops <= set(MATRIX)
    assert len(ops) >= 40
    assert Path(__file__).name == "test_authz_matrix.py"
