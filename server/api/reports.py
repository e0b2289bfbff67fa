"""Reports (POST /api/v1/reports): a resident reports an account, some of its statuses, a house rule.

Only statuses of the reported account that the reporter may see can be attached (422 otherwise); the
rules are the house rules of `instance.HOUSE_RULES` ("1".."5"). The moderators of the reported
account's village and every admin get an `admin.report` notification (Notification.report_id names
the report). `list_reports` feeds `voisinage reports list`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.actor import APPLICATION, Actor
from voisinage.models.audience import load_viewer, visible_ids
from voisinage.models.db import write_session
from voisinage.models.events import Event, queue_event
from voisinage.models.notification import Notification
from voisinage.models.post import Post
from voisinage.models.report import CATEGORIES, Report

from ..auth import require_viewer
from ..errors import json_response, not_found, unprocessable
from ..keys import SESSIONMAKER, SETTINGS
from .instance import HOUSE_RULES
from .params import Params, parse_id, read_params
from .to_api import account_to_api, iso

COMMENT_MAX = 1000
MAX_STATUSES = 20
RULE_IDS = tuple(str(i + 1) for i in range(len(HOUSE_RULES)))


def report_to_api(report: Report, target_account: dict[str, Any]) -> dict[str, Any]:
    """The Report entity (also the `report` field of an `admin.report` notification)."""
    return {
        "id": str(report.id),
        "action_taken": bool(report.action_taken),
        "action_taken_at": None,
        "category": report.category,
        "comment": report.comment,
        "forwarded": False,
        "created_at": iso(report.created_at),
        "status_ids": [str(i) for i in report.status_ids or []] or None,
        "rule_ids": list(report.rule_ids or []) or None,
        "target_account": target_account,
    }


async def reports_to_api(session: AsyncSession, report_ids: Iterable[int], base_url: str) -> dict[int, dict[str, Any]]:
    """Report entities by id, for the `report` field of a page of `admin.report` notifications (two
    queries for the page)."""
    wanted = {i for i in report_ids if i is not None}
    if not wanted:
        return {}
    reports = list(await session.scalars(select(Report).where(Report.id.in_(wanted))))
    targets = {a.id: a for a in await session.scalars(
        select(Actor).where(Actor.id.in_({r.target_id for r in reports})))}
    return {r.id: report_to_api(r, account_to_api(targets[r.target_id], base_url))
            for r in reports if r.target_id in targets}


async def list_reports(session: AsyncSession) -> list[Report]:
    """Every report, newest first (for `voisinage reports list`)."""
    return list(await session.scalars(select(Report).order_by(Report.id.desc())))


def _rule_ids(params: Params) -> list[str]:
    rules = list(dict.fromkeys(params.get_list("rule_ids", max_items=len(RULE_IDS) * 2)))
    unknown = [r for r in rules if r not in RULE_IDS]
    if unknown:
        raise unprocessable(f"rule_ids must be among {', '.join(RULE_IDS)}")
    return rules


def _status_ids(params: Params) -> list[int]:
    values = params.get_list("status_ids", max_items=MAX_STATUSES)
    ids = []
    for value in values:
        if not value.isdigit() or len(value) > 19:
            raise unprocessable("status_ids must be ids of statuses")
        ids.append(int(value))
    return list(dict.fromkeys(ids))


async def _check_statuses(session: AsyncSession, reporter_id: int, target_id: int, ids: list[int]) -> None:
    """Each status must be the reported account's and visible to the reporter (422 otherwise)."""
    if not ids:
        return
    theirs = set(await session.scalars(select(Post.id).where(
        Post.id.in_(ids), Post.author_id == target_id, Post.reblog_of_id.is_(None))))
    seen = await visible_ids(session, await load_viewer(session, reporter_id), list(theirs))
    if seen != set(ids):
        raise unprocessable("status_ids must be statuses of the reported account that you can see")


async def _moderators_of(session: AsyncSession, target: Actor) -> list[int]:
    """Moderators of the target's village and every admin, all local."""
    rule = Actor.role == "admin"
    if target.village_id is not None:
        rule = or_(rule, (Actor.role == "moderator") & (Actor.village_id == target.village_id))
    return list(await session.scalars(select(Actor.id).where(
        Actor.domain == "", Actor.suspended_at.is_(None), rule).order_by(Actor.id)))


async def _notify_moderators(session: AsyncSession, report: Report, target: Actor) -> None:
    for moderator_id in await _moderators_of(session, target):
        if moderator_id == report.reporter_id:
            continue
        note = Notification(recipient_id=moderator_id, kind="admin.report", from_actor_id=report.reporter_id,
                            report_id=report.id)
        session.add(note)
        await session.flush()
        await queue_event(session, Event("notification", note.id, audience=(moderator_id,)))


async def create_report(request: web.Request) -> web.Response:
    """POST /api/v1/reports: account_id, status_ids[], comment, category, rule_ids[], forward (ignored)."""
    me = require_viewer(request)
    params = await read_params(request)
    target_id = parse_id(params.get_str("account_id", required=True) or "", "account_id")
    comment = params.get_str("comment", "", max_len=COMMENT_MAX) or ""
    rules = _rule_ids(params)
    category = params.get_str("category", "violation" if rules else "other", choices=CATEGORIES)
    if category == "violation" and not rules:
        raise unprocessable("rule_ids is missing for a violation")
    status_ids = _status_ids(params)
    params.get_bool("forward", False)  # accepted; forwarding to other instances comes with federation
    base_url = request.app[SETTINGS].base_url
    async with write_session(request.app[SESSIONMAKER]) as session:
        target = await session.get(Actor, target_id)
        if target is None or target.kind == APPLICATION:
            raise not_found()
        if target.id == me:
            raise unprocessable("you cannot report yourself")
        await _check_statuses(session, me, target.id, status_ids)
        report = Report(reporter_id=me, target_id=target.id, category=category, comment=comment,
                        status_ids=status_ids, rule_ids=rules if category == "violation" else [])
        session.add(report)
        await session.flush()
        await _notify_moderators(session, report, target)
        return json_response(report_to_api(report, account_to_api(target, base_url)))
