"""Server-rendered pages (工作人员页面 under ``/staff``), one module per area.

* :mod:`service.web.common`: templates, :func:`~service.web.common.render`, the
  role-parametrised page dependency :class:`~service.web.common.PageAuth` (and
  ``StaffUserDep``), CSRF helpers and :func:`~service.web.common.page_router`;
* :mod:`service.web.auth`: sign in / sign out, the stylesheet;
* :mod:`service.web.campaigns`: the campaign list and the shortlist review with its decisions;
* :mod:`service.web.export`: the shortlist as XLSX;
* :mod:`service.web.bounties`: bounties, ranked bids, respondents; its lifecycle panel and
  moves (:mod:`service.web.bounty_state`);
* :mod:`service.web.dashboard`: the KPI dashboard (SVG charts, :mod:`service.web.charts`);
* :mod:`service.web.notice`: the public notice page (公示), the only pages open to anonymous
  visitors;
* :mod:`service.web.guideline`: guideline condensation (指南凝练) and near-duplicate needs;
* :mod:`service.web.views`: shortlist filters and display rows (shared by review and export);
* the portal (``/portal``, :mod:`service.web.portal_common`): one sign-in for every role and the
  password change (:mod:`~service.web.portal_auth`), enterprise needs, suggestions and
  introductions (:mod:`~service.web.portal_enterprise`), introductions addressed to an
  institute and the staff vetting / forwarding queues (:mod:`~service.web.portal_intro`), the
  staff queue of applications to check (:mod:`~service.web.portal_staff_apps`), the
  inbox 站内信 (:mod:`~service.web.portal_messages`), staff opening enterprise and institute
  accounts (:mod:`~service.web.portal_accounts`).

Pages are plain HTML forms (POST → redirect → GET) and work without JavaScript. Only the
callers a page's dependency admits see it (staff/admin for ``/staff``); every POST form carries
a CSRF token bound to the session (the login form: a double-submit cookie). A new area adds a
module with its own ``router = page_router(...)`` and is listed in :data:`router` below.
"""

from __future__ import annotations

from fastapi import APIRouter

from service.web import (
    auth,
    bounties,
    bounty_state,
    campaigns,
    dashboard,
    export,
    guideline,
    notice,
    portal_accounts,
    portal_auth,
    portal_bounties,
    portal_enterprise,
    portal_institute,
    portal_intro,
    portal_messages,
    portal_staff_apps,
    staff_accounts,
    staff_browse,
    staff_campaign_form,
)

router = APIRouter()
# staff_campaign_form before campaigns: /staff/campaigns/new must not reach
# /staff/campaigns/{campaign_id}.
for _module in (
    auth,
    staff_campaign_form,
    campaigns,
    export,
    bounties,
    bounty_state,
    dashboard,
    guideline,
    portal_auth,
    portal_enterprise,
    portal_intro,
    portal_staff_apps,
    portal_messages,
    portal_institute,
    portal_bounties,
    staff_browse,
    staff_accounts,
    notice,
    portal_accounts,
):
    router.include_router(_module.router)

__all__ = ["router"]
