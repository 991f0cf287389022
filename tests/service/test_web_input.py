# ruff: noqa: F811  (pytest fixtures imported from tests.service.test_web)
"""Staff pages: the role-parametrised page dependency, and odd input (ids beyond range,
control characters in notes and exported texts) answered with 422 or cleaned, never a 500."""

from __future__ import annotations

import io
from typing import Annotated

import pytest
from fastapi import Depends, Request
from fastapi.responses import Response
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from service import auth
from service.models import ShortlistItem
from service.web.common import PageAuth, page_router, render
from tests.service._webseed import ENTERPRISE_USER, STAFF_PASSWORD, STAFF_USER, World, build_app
from tests.service.test_web import _form, _item, client, login, world  # noqa: F401 (fixtures)

# --- the page dependency, reused by another area -------------------------------------------


_PortalUser = Annotated[auth.Principal, Depends(PageAuth(("enterprise",), denied="仅企业"))]


def test_page_auth_dependency_is_role_parametrised(world: World) -> None:
    """A page module of another role reuses PageAuth + render + page_router as documented."""
    router = page_router("/portal-test")

    @router.get("/home", name="portal_test_home")
    def home(request: Request, user: _PortalUser, n: int = 0) -> Response:
        return render(request, "staff/error.html", {"heading": user.username, "message": str(n)})

    app = build_app(world.settings)
    app.include_router(router)
    with TestClient(app, follow_redirects=False) as c:
        anonymous = c.get("/portal-test/home")
        assert anonymous.status_code == 303
        assert "/staff/login?next=%2Fportal-test%2Fhome" in anonymous.headers["location"]
        headers = {"Authorization": f"Bearer {world.enterprise_key}"}
        ok = c.get("/portal-test/home?n=7", headers=headers)
        assert ok.status_code == 200 and ENTERPRISE_USER in ok.text and "7" in ok.text
        assert ok.headers["Content-Security-Policy"].startswith("default-src 'self'")
        bad = c.get("/portal-test/home?n=x", headers=headers)
        assert bad.status_code == 422 and "请求无效" in bad.text
        login(c, STAFF_USER, STAFF_PASSWORD)
        denied = c.get("/portal-test/home")
        assert denied.status_code == 403 and "仅企业" in denied.text
        assert c.get("/portal-test/home", headers={"X-API-Key": "dj_bogus_x"}).status_code == 401


# --- odd input: bounded ids, cleaned notes, exports that never fail --------------------------

HUGE = "99999999999999999999"  # beyond 64 bits


@pytest.mark.parametrize(
    "path",
    [
        f"/staff/campaigns/{HUGE}",
        f"/staff/campaigns/{HUGE}/export.xlsx",
        f"/staff/bounties/{HUGE}",
        "/staff/campaigns/0",
        "/staff/bounties/-1",
    ],
)
def test_page_ids_beyond_range_are_422_not_500(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 303  # anonymous: to the login page first
    login(client, STAFF_USER, STAFF_PASSWORD)
    r = client.get(path)
    assert r.status_code == 422, r.text[:200]
    assert "请求无效" in r.text and r.headers["content-type"].startswith("text/html")


def test_decision_form_ids_and_version_beyond_range_are_422(
    client: TestClient, world: World
) -> None:
    login(client, STAFF_USER, STAFF_PASSWORD)
    item_id = world.item_ids[0]
    form = {**_form(client, world, item_id), "action": "approve"}
    urls = [
        f"/staff/campaigns/{world.campaign_id}/items/{HUGE}",
        f"/staff/campaigns/{HUGE}/items/{item_id}",
    ]
    for url in urls:
        assert client.post(url, data=form).status_code == 422
    url = f"/staff/campaigns/{world.campaign_id}/items/{item_id}"
    for version in ("18446744073709551616", "0", "-1", "x"):
        r = client.post(url, data={**form, "version": version})
        assert r.status_code == 422, version
    assert _item(world, item_id).version == 1


def test_decision_note_is_cleaned_at_entry(client: TestClient, world: World) -> None:
    login(client, STAFF_USER, STAFF_PASSWORD)
    item_id = world.item_ids[0]
    url = f"/staff/campaigns/{world.campaign_id}/items/{item_id}"
    note = " 已\u0007电话\u0000确认，联系人ＡＢ１２ "
    r = client.post(url, data={**_form(client, world, item_id), "action": "note", "note": note})
    assert r.status_code == 303
    assert _item(world, item_id).note == "已电话确认，联系人AB12"


def test_export_never_fails_on_control_characters(client: TestClient, world: World) -> None:
    # Rows stored before notes were cleaned (or texts from elsewhere) may hold any character.
    from sqlalchemy import update

    from service.models import Organisation

    with world.factory() as db:
        db.execute(
            update(ShortlistItem)
            .where(ShortlistItem.id == world.item_ids[0])
            .values(note="响铃\u0007备注\u0000", problem="\u001b[31m")
        )
        item = db.get(ShortlistItem, world.item_ids[0])
        assert item is not None
        db.execute(
            update(Organisation)
            .where(Organisation.id == item.enterprise_id)
            .values(name="=企业\u0008名")
        )
        db.commit()
    login(client, STAFF_USER, STAFF_PASSWORD)
    r = client.get(f"/staff/campaigns/{world.campaign_id}/export.xlsx")
    assert r.status_code == 200
    rows = list(load_workbook(io.BytesIO(r.content))["配对名单"].iter_rows(values_only=True))
    row = next(x for x in rows if x[0] == world.item_ids[0])
    assert row[1] == "'=企业名" and row[11] == "响铃备注" and row[12] in ("[31m", None, "")
    assert client.get(f"/staff/campaigns/{world.campaign_id}").status_code == 200
