"""A resident's profile: validating `update_credentials` and rendering what residents type.

Everything is checked before anything is changed: `validate_profile` returns a `ProfileChanges` (or
raises `ProfileError` naming the first problem), and `apply_profile` writes it. Profiles are real
people: the display name cannot be blank, and the verified `Village: <name>` field that registration
puts first is managed by the server (residents can neither drop nor edit it, and no other field can
claim to be verified).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

from voisinage.models.actor import Actor
from voisinage.models.html import sanitize
from voisinage.models.post import VISIBILITIES
from voisinage.models.resident import Resident

MAX_DISPLAY_NAME = 100
MAX_NOTE = 500
MAX_FIELDS = 4  # Mastodon's limit; the managed Village field is one of them
MAX_FIELD_NAME = 255
MAX_FIELD_VALUE = 255
LANGUAGE = re.compile(r"^[a-z]{2,3}$")
VILLAGE_FIELD = "village"
_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""


class ProfileError(Exception):
    """An invalid profile value, told in one line that names the parameter."""


@dataclass
class ProfileChanges:
    """What an update_credentials request asks to change (None: leave as is)."""

    display_name: str | None = None
    note_source: str | None = None
    locked: bool | None = None
    discoverable: bool | None = None
    fields: list[dict[str, Any]] | None = None
    privacy: str | None = None
    sensitive: bool | None = None
    language: str | None = None
    language_given: bool = False
    locale: str | None = None


# -- rendering ---------------------------------------------------------------------------------------

def _link(match: re.Match[str]) -> str:
    url = match.group(0)
    tail = ""
    while url and url[-1] in _TRAILING:
        tail = url[-1] + tail
        url = url[:-1]
    shown = re.sub(r"^https?://(www\.)?", "", url)
    return f'<a href="{url}" target="_blank">{shown}</a>{tail}'


def linkify(text: str) -> str:
    """Escape plain text and turn http(s) URLs into links."""
    out: list[str] = []
    last = 0
    for match in _URL.finditer(text):
        out.append(html.escape(text[last:match.start()], quote=False))
        out.append(_link(match))
        last = match.end()
    out.append(html.escape(text[last:], quote=False))
    return "".join(out)


def text_to_html(text: str) -> str:
    """Plain text as safe HTML: paragraphs at blank lines, `<br>` at single line breaks, links."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        return ""
    paragraphs = [p for p in re.split(r"\n{2,}", text) if p.strip()]
    rendered = "".join("<p>" + "<br>".join(linkify(line) for line in p.split("\n")) + "</p>"
                       for p in paragraphs)
    return sanitize(rendered)


def field_value_to_html(value: str) -> str:
    return sanitize(linkify(value.strip()))


# -- validation --------------------------------------------------------------------------------------

def _str(value: Any, name: str, *, max_len: int) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ProfileError(f"{name} must be a string")
    text = str(value)
    if len(text) > max_len:
        raise ProfileError(f"{name} is too long (maximum is {max_len} characters)")
    return text


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str) and value.lower() in ("true", "1", "on", "yes", "t"):
        return True
    if isinstance(value, str) and value.lower() in ("false", "0", "off", "no", "f", ""):
        return False
    raise ProfileError(f"{name} must be true or false")


def clean_display_name(value: Any) -> str:
    name = " ".join(_str(value, "display_name", max_len=10 * MAX_DISPLAY_NAME).split())
    if not name:
        raise ProfileError("display_name can't be blank (your first and last name)")
    if len(name) > MAX_DISPLAY_NAME:
        raise ProfileError(f"display_name is too long (maximum is {MAX_DISPLAY_NAME} characters)")
    return name


def managed_field(actor: Actor) -> dict[str, Any] | None:
    """The verified Village field registration set first, if the account has one."""
    fields = actor.fields or []
    if fields and fields[0].get("verified_at"):
        return fields[0]
    return None


def _field_entries(value: Any) -> list[Any]:
    """fields_attributes as a JSON list, or as Rails' `{"0": {...}, "1": {...}}`."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if all(isinstance(k, str) and k.isdigit() for k in value):
            return [value[k] for k in sorted(value, key=int)]
        raise ProfileError("fields_attributes must be a list of {name, value}")
    raise ProfileError("fields_attributes must be a list of {name, value}")


def _plain(value_html: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", value_html or "")).strip()


def clean_fields(actor: Actor, value: Any) -> list[dict[str, Any]]:
    """The new list of fields: the managed Village field first, then the resident's own (no verified_at)."""
    pairs: list[tuple[str, str]] = []
    for index, entry in enumerate(_field_entries(value)):
        if not isinstance(entry, dict):
            raise ProfileError(f"fields_attributes[{index}] must be an object with name and value")
        name = _str(entry.get("name", ""), f"fields_attributes[{index}][name]", max_len=MAX_FIELD_NAME).strip()
        text = _str(entry.get("value", ""), f"fields_attributes[{index}][value]", max_len=MAX_FIELD_VALUE).strip()
        if name or text:  # apps send their empty rows too
            pairs.append((name, text))
    managed = managed_field(actor)
    own = pairs
    if managed is not None:
        wanted = (managed.get("name", ""), _plain(managed.get("value", "")))
        if wanted not in pairs:
            raise ProfileError(f"fields_attributes must keep the verified field "
                               f"\"{wanted[0]}: {wanted[1]}\" unchanged (it is managed by the server)")
        own = [p for p in pairs if p != wanted]
    for name, _text in own:
        if name.lower() == VILLAGE_FIELD:
            raise ProfileError("fields_attributes: the Village field is managed by the server")
    total = len(own) + (1 if managed is not None else 0)
    if total > MAX_FIELDS:
        raise ProfileError(f"fields_attributes has too many fields (maximum is {MAX_FIELDS})")
    fields = [dict(managed)] if managed is not None else []
    fields += [{"name": name, "value": field_value_to_html(text), "verified_at": None} for name, text in own]
    return fields


def clean_source(data: Any, changes: ProfileChanges) -> None:
    if not isinstance(data, dict):
        raise ProfileError("source must be an object")
    if data.get("privacy") is not None:
        privacy = _str(data["privacy"], "source[privacy]", max_len=10)
        if privacy not in VISIBILITIES:
            raise ProfileError(f"source[privacy] must be one of {', '.join(VISIBILITIES)}")
        changes.privacy = privacy
    if data.get("sensitive") is not None:
        changes.sensitive = _bool(data["sensitive"], "source[sensitive]")
    if "language" in data:
        language = data["language"]
        language = "" if language is None else _str(language, "source[language]", max_len=8).strip().lower()
        if language and not LANGUAGE.match(language):
            raise ProfileError("source[language] must be an ISO 639 language code, e.g. fr")
        changes.language = language or None
        changes.language_given = True


def validate_profile(actor: Actor, data: dict[str, Any], locales: tuple[str, ...]) -> ProfileChanges:
    """Check every parameter of update_credentials; raises ProfileError, changes nothing."""
    changes = ProfileChanges()
    if data.get("display_name") is not None:
        changes.display_name = clean_display_name(data["display_name"])
    if data.get("note") is not None:
        changes.note_source = _str(data["note"], "note", max_len=MAX_NOTE).replace("\r\n", "\n")
    if data.get("locked") is not None:
        changes.locked = _bool(data["locked"], "locked")
    if data.get("discoverable") is not None:
        changes.discoverable = _bool(data["discoverable"], "discoverable")
    if data.get("fields_attributes") is not None:
        changes.fields = clean_fields(actor, data["fields_attributes"])
    if data.get("source") is not None:
        clean_source(data["source"], changes)
    if data.get("locale") is not None:
        locale = _str(data["locale"], "locale", max_len=8)
        if locale not in locales:
            raise ProfileError(f"locale must be one of {', '.join(locales)}")
        changes.locale = locale
    return changes


def apply_profile(actor: Actor, resident: Resident, changes: ProfileChanges) -> None:
    """Write validated changes onto the rows (the caller's transaction commits them)."""
    if changes.display_name is not None:
        actor.display_name = changes.display_name
    if changes.note_source is not None:
        actor.note_source = changes.note_source
        actor.note = text_to_html(changes.note_source)
    if changes.locked is not None:
        actor.locked = changes.locked
    if changes.discoverable is not None:
        actor.discoverable = changes.discoverable
    if changes.fields is not None:
        actor.fields = changes.fields
    if changes.privacy is not None:
        resident.default_visibility = changes.privacy
    if changes.sensitive is not None:
        resident.default_sensitive = changes.sensitive
    if changes.language_given:
        resident.default_language = changes.language
    if changes.locale is not None:
        resident.locale = changes.locale
