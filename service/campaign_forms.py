"""The staff form that creates a pairing campaign (结对子) and starts its background run.

:func:`parse_campaign_form` validates name, k, capacity, fair mode and the previous campaign
(Chinese messages per field); :func:`create_and_start` writes the row, audits it and hands it
to the app's :class:`~service.jobs.campaign_runner.CampaignRunner`, the same runner
``POST /api/v1/campaigns`` uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service import auth, crud
from service.forms import FormErrors, parse_choice_field, parse_int_field, parse_text_field
from service.jobs.pairing import PairingParams
from service.models import Campaign

K_MAX = 10
CAPACITY_MAX = 100
FAIR_MODES: dict[str, str] = {"0": "总分最高(默认)", "1": "公平优先(先保障最差配对)"}


@dataclass(frozen=True, slots=True)
class CampaignForm:
    """A validated campaign form."""

    name: str
    k: int
    capacity: int
    fair: bool
    previous_id: int | None

    @property
    def params(self) -> dict[str, Any]:
        """The stored campaign parameters (the pairing engine's PairingParams)."""
        return PairingParams(k=self.k, capacity=self.capacity, fair=self.fair).stored()


def parse_campaign_form(session: Session, raw: dict[str, Any]) -> CampaignForm:
    """Validate the form; FormErrors with a Chinese message per bad field."""
    errors = FormErrors()
    name = parse_text_field(errors, "name", raw.get("name"), "活动名称", max_len=100)
    if name and session.scalar(select(Campaign.id).where(Campaign.name == name)):
        errors.add("name", "已有同名活动，请换一个名称")
    k = parse_int_field(errors, "k", raw.get("k"), "每家企业配对数 k", minimum=1, maximum=K_MAX)
    capacity = parse_int_field(
        errors,
        "capacity",
        raw.get("capacity"),
        "每家院所名额",
        minimum=1,
        maximum=CAPACITY_MAX,
    )
    fair = parse_choice_field(errors, "fair", raw.get("fair") or "0", "求解方式", FAIR_MODES)
    previous_id = parse_int_field(
        errors,
        "previous_id",
        raw.get("previous_id"),
        "上一期活动",
        minimum=1,
        maximum=2**31,
        required=False,
    )
    if previous_id is not None and "previous_id" not in errors.fields:
        if session.get(Campaign, previous_id) is None:
            errors.add("previous_id", "没有这个活动")
    errors.raise_if_any()
    assert name is not None and k is not None and capacity is not None
    return CampaignForm(name, k, capacity, fair == "1", previous_id)


def create_and_start(
    session: Session, runner: Any, *, user: auth.Principal, form: CampaignForm
) -> Campaign:
    """Create the campaign row and start its run in the background; returns the row."""
    campaign = crud.create_campaign(
        session, name=form.name, params=form.params, previous_id=form.previous_id
    )
    crud.audit(
        session,
        user=user,
        action="campaign.create",
        entity="campaign",
        entity_id=campaign.id,
        detail={"name": form.name, "params": form.params},
    )
    session.commit()
    if runner.start(campaign.id):
        crud.audit(
            session, user=user, action="campaign.run", entity="campaign", entity_id=campaign.id
        )
        session.commit()
    session.refresh(campaign)
    return campaign


def recent_campaigns(session: Session, limit: int = 50) -> list[Campaign]:
    """Campaigns for the "previous campaign" choice, newest first."""
    return list(session.scalars(select(Campaign).order_by(Campaign.id.desc()).limit(limit)))
