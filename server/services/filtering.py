"""Applying a resident's filters to rendered statuses, and the exclusive lists of the home timeline.

Filters match as Mastodon's do: a keyword matches the status's text (its HTML stripped), its content
warning and, for a boost, those of the boosted status; case-insensitive but accent-sensitive; a
`whole_word` keyword only matches between word boundaries. A status listed in a filter matches too.
`warn` filters mark the status (`filtered`), `hide` filters remove it; expired filters do nothing.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.base import utcnow
from voisinage.models.filters import Filter, FilterKeyword, FilterStatus
from voisinage.models.lists import ListMember, UserList

_TAG = re.compile(r"<[^>]+>")
_BREAK = re.compile(r"<br\s*/?>|</p>", re.IGNORECASE)


def iso(moment: dt.datetime | None) -> str | None:
    """Mastodon's timestamp format (milliseconds, `Z`)."""
    if moment is None:
        return None
    moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def filter_to_api(flt: Filter, keywords: Iterable[FilterKeyword] | None = None,
                  statuses: Iterable[FilterStatus] | None = None) -> dict[str, Any]:
    """The v2 Filter entity; `keywords`/`statuses` are included when given (not in FilterResults)."""
    data: dict[str, Any] = {
        "id": str(flt.id),
        "title": flt.title,
        "context": list(flt.contexts or []),
        "expires_at": iso(flt.expires_at),
        "filter_action": flt.action,
    }
    if keywords is not None:
        data["keywords"] = [keyword_to_api(k) for k in keywords]
    if statuses is not None:
        data["statuses"] = [filter_status_to_api(s) for s in statuses]
    return data


def keyword_to_api(keyword: FilterKeyword) -> dict[str, Any]:
    return {"id": str(keyword.id), "keyword": keyword.keyword, "whole_word": bool(keyword.whole_word)}


def filter_status_to_api(item: FilterStatus) -> dict[str, Any]:
    return {"id": str(item.id), "status_id": str(item.post_id)}


def keyword_pattern(keyword: str, whole_word: bool) -> re.Pattern[str]:
    """Case-insensitive; word boundaries only on the sides of a whole word that begin/end with a letter."""
    escaped = re.escape(keyword)
    if whole_word:
        start = r"\b" if re.match(r"\w", keyword) else ""
        end = r"\b" if re.search(r"\w\Z", keyword) else ""
        escaped = f"{start}{escaped}{end}"
    return re.compile(escaped, re.IGNORECASE)


def html_to_text(content: str) -> str:
    """The text of sanitized status HTML: line breaks for `<br>` and paragraphs, tags off, entities decoded."""
    return html.unescape(_TAG.sub("", _BREAK.sub("\n", content or "")))


def searchable_text(status: dict[str, Any]) -> str:
    """What keywords are matched against: content warning and text, of the status or the one it boosts."""
    shown = status.get("reblog") or status
    return "\n".join([shown.get("spoiler_text") or "", html_to_text(shown.get("content") or "")])


@dataclass
class ActiveFilter:
    """A filter that applies now, with its compiled keywords and the status ids it lists."""

    filter: Filter
    keywords: list[tuple[str, re.Pattern[str]]] = field(default_factory=list)
    status_ids: dict[int, int] = field(default_factory=dict)  # post id -> FilterStatus id


async def get_active_filters(session: AsyncSession, owner_id: int, context: str,
                             now: dt.datetime | None = None) -> list[ActiveFilter]:
    """The owner's unexpired filters for `context`, with their keywords and statuses (three queries)."""
    now = now or utcnow()
    rows = [f for f in await session.scalars(select(Filter).where(Filter.owner_id == owner_id))
            if context in (f.contexts or []) and (f.expires_at is None or f.expires_at > now)]
    if not rows:
        return []
    active = {f.id: ActiveFilter(f) for f in rows}
    for kw in await session.scalars(select(FilterKeyword).where(FilterKeyword.filter_id.in_(active))):
        active[kw.filter_id].keywords.append((kw.keyword, keyword_pattern(kw.keyword, kw.whole_word)))
    for item in await session.scalars(select(FilterStatus).where(FilterStatus.filter_id.in_(active))):
        active[item.filter_id].status_ids[item.post_id] = item.id
    return [active[f.id] for f in rows]


def match_status(status: dict[str, Any], active: ActiveFilter) -> dict[str, Any] | None:
    """The FilterResult of one filter on one rendered status, or None when it does not match."""
    text = searchable_text(status)
    keyword_matches = [word for word, pattern in active.keywords if pattern.search(text)]
    ids = {int(status["id"])}
    if status.get("reblog"):
        ids.add(int(status["reblog"]["id"]))
    status_matches = [str(post_id) for post_id in sorted(ids) if post_id in active.status_ids]
    if not keyword_matches and not status_matches:
        return None
    return {"filter": filter_to_api(active.filter), "keyword_matches": keyword_matches or None,
            "status_matches": status_matches or None}


async def apply_filters(session: AsyncSession, viewer_id: int | None, statuses: list[dict[str, Any]],
                        context: str, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Set `filtered` on statuses matched by warn filters; drop those matched by a hide filter."""
    if viewer_id is None or not statuses:
        return statuses
    filters = await get_active_filters(session, viewer_id, context, now)
    if not filters:
        return statuses
    out = []
    for status in statuses:
        results = []
        hidden = False
        for active in filters:
            result = match_status(status, active)
            if result is not None:
                hidden = hidden or active.filter.action == "hide"
                results.append(result)
        if hidden:
            continue
        status["filtered"] = results
        if status.get("reblog"):
            status["reblog"]["filtered"] = results
        out.append(status)
    return out


def exclusive_members(owner_id: int) -> Any:
    """SELECT of the accounts in the owner's exclusive lists: their posts stay out of the owner's home."""
    return (select(ListMember.actor_id).join(UserList, UserList.id == ListMember.list_id)
            .where(UserList.owner_id == owner_id, UserList.exclusive.is_(True)))
