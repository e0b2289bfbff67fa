"""from_ap reads what peers really send: Mastodon, GoToSocial, Takahē, Lemmy, PeerTube shapes written
for these tests (tests/fixtures/peers/notes/) and bovine / fediverse-pasture wire captures."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from voisinage.federation.dispatch import find_handler, object_type_of
from voisinage.federation.from_ap import ApParseError, note_author, parse_note, parse_poll, poll_vote_of, visibility_of
from voisinage.federation.vocab import first, get_id

PEERS = Path(__file__).parent.parent / "fixtures" / "peers"
NOTES = PEERS / "notes"


def load(name: str) -> Any:
    return json.loads((NOTES / name).read_text())


def captured(name: str, index: int) -> dict[str, Any]:
    return json.loads((PEERS / name).read_text())[index]["body"]


def test_mastodon_public_note_with_mentions_and_hashtag() -> None:
    activity = load("mastodon_create_note.json")
    note = parse_note(activity["object"])
    assert note.author_uri == "https://b.test/users/cedar"
    assert note.mentions == ["https://a.test/users/alder"] and note.hashtags == ["brocante"]
    assert "brocante" in note.content and note.language == "fr"
    assert visibility_of(note, "https://b.test/users/cedar/followers", {}) == ("public", None)
    assert find_handler(activity) is not None


def test_gotosocial_string_addressing_and_empty_summary() -> None:
    note = parse_note(load("gotosocial_create_note.json")["object"])
    assert note.addresses == {"https://www.w3.org/ns/activitystreams#Public",
                              "https://b.test/users/cedar/followers"}
    assert note.spoiler_text == "" and "marché" in note.content


def test_gotosocial_followers_only_with_content_map_and_single_tag() -> None:
    note = parse_note(load("gotosocial_followers_only_contentmap.json")["object"])
    assert note.content == "<p>Seulement pour mes abonnés</p>" and note.language == "fr"
    assert note.hashtags == ["voisins"]  # `tag` as one object
    assert note.published is not None and note.published.microsecond == 123456
    assert visibility_of(note, "https://b.test/users/cedar/followers", {}) == ("private", None)


def test_takahe_as_public_alias() -> None:
    note = parse_note(load("takahe_create_note.json")["object"])
    assert visibility_of(note, "https://b.test/@cedar@b.test/followers/", {}) == ("public", None)
    assert note.mentions == ["https://a.test/users/alder"]


def test_lemmy_group_announce_of_a_page() -> None:
    announce = load("lemmy_announce_page.json")
    create = first(announce["object"])
    page = parse_note(create["object"])
    assert page.audience == "https://b.test/c/quartier"
    groups = {"https://b.test/c/quartier": "https://b.test/c/quartier/followers"}
    assert visibility_of(page, "https://b.test/u/cedar/followers", groups) == ("public", "https://b.test/c/quartier")
    assert object_type_of(announce) == "Create"
    assert find_handler(announce) is not None


def test_peertube_attributed_to_a_list_picks_the_person() -> None:
    assert note_author(load("peertube_attributed_list.json")) == "https://b.test/accounts/cedar"


def test_bovine_create_note_parses() -> None:
    create = captured("herd_follow_create.pretty.json", 4)
    assert create["type"] == "Create"
    note = parse_note(create["object"])
    assert note.author_uri == get_id(create["actor"])
    assert isinstance(create["object"]["to"], (str, list))  # bovine: `to` may be a plain string
    assert visibility_of(note, None, {})[0] in ("public", "direct")


def test_bovine_follow_and_accept_with_only_an_id() -> None:
    follow = captured("herd_follow_create.pretty.json", 3)
    assert follow["type"] == "Follow" and find_handler(follow) is not None
    accept = json.loads((PEERS / "herd_accept_follow.json").read_text())
    assert get_id(first(accept["object"])) == "http://127.0.0.1:2909/activity/follow-c97bcd8c"
    assert object_type_of(accept) is None and find_handler(accept) is not None


def test_pasture_create_note_parses() -> None:
    create = captured("pasture_send_create_note.pretty.json", 2)
    note = parse_note(create["object"])
    assert "https://www.w3.org/ns/activitystreams#Public" in note.addresses


@pytest.mark.parametrize("bad", [
    "https://b.test/note/1",  # a bare id is not a note
    {"type": "Person", "id": "https://b.test/users/x"},
    {"type": "Note", "id": "https://b.test/n/1"},  # no author
    {"type": "Note", "id": "https://b.test/n/1", "attributedTo": "https://c.test/users/x"},  # other host
    {"type": "Note", "id": "javascript:alert(1)", "attributedTo": "https://b.test/users/x"},
])
def test_unusable_notes_are_refused(bad: Any) -> None:
    with pytest.raises(ApParseError):
        parse_note(bad)


def test_content_is_sanitized() -> None:
    note = parse_note({"type": "Note", "id": "https://b.test/n/1", "attributedTo": "https://b.test/u/x",
                       "content": '<p onclick="x()">hi<script>alert(1)</script></p>'})
    assert "script" not in note.content and "onclick" not in note.content


# -- attachments ----------------------------------------------------------------------------------


def test_mastodon_image_and_video_attachments() -> None:
    image, video = parse_note(load("mastodon_create_note_media.json")["object"]).attachments
    assert image.url.endswith("4f1c2a9e8d7b6a50.jpg") and image.url.startswith("https://files.b.test/")
    assert (image.kind, image.content_type) == ("image", "image/jpeg")
    assert image.description == "Une table en chêne devant un garage"
    assert image.blurhash == "UCF~K@%M00Rj~qt7IUof_3ayRjj[t7ofWBWB"
    assert (image.width, image.height, image.focus) == (1600, 1200, (0.25, -0.5))
    assert (video.kind, video.content_type, video.description) == ("video", "video/mp4", "")  # "name": null


def test_gotosocial_attachment_as_one_object() -> None:
    (media,) = parse_note(load("gotosocial_create_note_media.json")["object"]).attachments
    assert media.kind == "image" and media.content_type == "image/webp"
    assert media.description == "Le potager partagé au printemps" and media.width == 0  # no size sent


def test_takahe_document_with_size_and_focus() -> None:
    (media,) = parse_note(load("takahe_create_note_media.json")["object"]).attachments
    assert (media.kind, media.width, media.height, media.focus) == ("image", 2048, 1536, (0.0, 0.0))
    assert media.description.startswith("Plan du quartier")


def test_lemmy_image_post_link_attachment_is_media() -> None:
    page = parse_note(first(load("lemmy_create_page_image.json")["object"])["object"])
    (media,) = page.attachments
    assert media.url.endswith(".jpeg") and media.kind == "image" and media.description == ""


def _note_with(attachment: Any) -> dict[str, Any]:
    return {"type": "Note", "id": "https://b.test/n/1", "attributedTo": "https://b.test/u/x", "content": "x",
            "attachment": attachment}


def test_url_as_link_or_list_of_links() -> None:
    parsed = parse_note(_note_with([
        {"type": "Document", "url": {"type": "Link", "href": "https://b.test/a.png", "mediaType": "image/png"}},
        {"type": "Video", "url": [{"type": "Link", "href": "magnet:?xt=urn:btih:00", "mediaType": "video/mp4"},
                                  {"type": "Link", "href": "https://b.test/v.webm", "mediaType": "video/webm"}]},
        {"type": "Audio", "url": "https://b.test/s.ogg"},
        {"type": "Image", "url": "https://b.test/d.svg", "mediaType": "image/svg+xml"},
    ])).attachments
    assert [(m.url, m.kind, m.content_type) for m in parsed] == [
        ("https://b.test/a.png", "image", "image/png"), ("https://b.test/v.webm", "video", "video/webm"),
        ("https://b.test/s.ogg", "audio", ""), ("https://b.test/d.svg", "unknown", "image/svg+xml")]


@pytest.mark.parametrize("url", [
    "javascript:alert(1)", "JavaScript:alert(1)", " javascript:alert(1)", "data:image/png;base64,AAAA",
    "ftp://b.test/a.png", "https:///nohost.png", "https://b.test/a b.png", "https://b.test/a\x00.png",
    'https://b.test/"><script>.png', "https://[::1/a.png", "https://b.test/" + "a" * 600, "", 42, None,
    {"href": "javascript:alert(1)"}, ["vbscript:x"],
])
def test_unsafe_media_urls_are_dropped(url: Any) -> None:
    assert parse_note(_note_with([{"type": "Image", "url": url, "mediaType": "image/png"}])).attachments == []


def test_at_most_four_attachments_and_no_non_media() -> None:
    items: list[Any] = [{"type": "PropertyValue", "name": "x", "value": "y"},
                        {"type": "Link", "href": "https://b.test/article"}, "https://b.test/bare.png"]
    items += [{"type": "Document", "url": f"https://b.test/{i}.png", "mediaType": "image/png"} for i in range(50)]
    parsed = parse_note(_note_with(items)).attachments
    assert [m.url for m in parsed] == [f"https://b.test/{i}.png" for i in range(4)]


def test_hostile_attachment_fields_are_cut_or_dropped() -> None:
    (media,) = parse_note(_note_with({
        "type": "Document", "url": "https://b.test/a.png", "mediaType": "<script>/x" + "y" * 100,
        "name": "\x00alt\x07 " + "n" * 100_000, "blurhash": "not a blurhash!" + "x" * 100,
        "width": "1600", "height": 10**12, "focalPoint": [5, -7]})).attachments
    assert media.content_type == "" and media.kind == "unknown"  # a Document of no known type
    assert media.description.startswith("alt n") and len(media.description) == 1500 and "\x00" not in media.description
    assert media.blurhash is None and (media.width, media.height) == (0, 0) and media.focus == (0.0, 0.0)


# -- polls ----------------------------------------------------------------------------------------


def test_mastodon_question_is_a_single_choice_poll() -> None:
    note = parse_note(load("mastodon_create_question.json")["object"])
    poll = note.poll
    assert poll is not None and "fête des voisins" in note.content
    assert (poll.options, poll.counts, poll.multiple, poll.voters) == (["Samedi", "Dimanche"], [4, 3], False, 7)
    assert poll.expires_at == dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC) and poll.closed_at is None
    assert find_handler(load("mastodon_create_question.json")) is not None


def test_mastodon_update_question_brings_counts_and_the_end() -> None:
    activity = load("mastodon_update_question.json")
    poll = parse_note(activity["object"]).poll
    assert poll is not None and poll.counts == [9, 3] and poll.voters == 12
    assert poll.closed_at == dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)
    assert find_handler(activity) is not None


def test_gotosocial_any_of_is_multiple_choice() -> None:
    poll = parse_note(load("gotosocial_create_question.json")["object"]).poll
    assert poll is not None and poll.multiple and poll.options == ["Soupe", "Tarte", "Fromage"]
    assert poll.counts == [2, 5, 0] and poll.voters == 5


def _question(**extra: Any) -> dict[str, Any]:
    return {"type": "Question", "id": "https://b.test/q/1", "attributedTo": "https://b.test/u/x",
            "content": "?", **extra}


def test_question_variants() -> None:
    options = [{"type": "Note", "name": "Oui"}, {"type": "Note", "name": "Non", "replies": {"totalItems": -3}}]
    open_poll = parse_poll(_question(oneOf=options))
    assert open_poll is not None and open_poll.expires_at is None and open_poll.counts == [0, 0]
    closed = parse_poll(_question(oneOf=options, closed=True, endTime="2026-11-01T00:00:00Z"))
    assert closed is not None and closed.closed_at == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    assert parse_note({**_question(), "type": "Note", "oneOf": options}).poll is None  # only a Question


@pytest.mark.parametrize("options", [
    [{"name": "Seule"}],  # fewer than two
    [{"name": f"o{i}"} for i in range(21)],  # more than MAX_POLL_OPTIONS
    [{"name": "Oui"}, {"name": "N" * 501}],  # a title too long to name in a vote
    [{"name": "Oui"}, {"name": "  "}], [{"name": "Oui"}, "Non"], [{"name": "Oui"}, {"name": 3}],
])
def test_unusable_polls_are_dropped_not_the_note(options: list[Any]) -> None:
    note = parse_note(_question(oneOf=options))
    assert note.poll is None and note.content == "?"


def test_poll_vote_shape() -> None:
    vote = load("mastodon_vote.json")["object"]
    assert poll_vote_of(vote) == ("https://a.test/users/alder/statuses/1", "Samedi")
    assert poll_vote_of({**vote, "content": "<p>Samedi</p>"}) is None  # a reply with a title
    assert poll_vote_of({**vote, "type": "Question"}) is None
    assert poll_vote_of({k: v for k, v in vote.items() if k != "inReplyTo"}) is None
    assert poll_vote_of({**vote, "name": "x" * 501}) is None


def test_mentions_are_capped_and_only_urls() -> None:
    tags = [{"type": "Mention", "href": f"https://b.test/u/{i}"} for i in range(300)]
    tags += [{"type": "Mention", "href": "javascript:alert(1)"}, {"type": "Mention", "href": "https://b.test/u/0"}]
    mentions = parse_note({**_note_with([]), "tag": tags}).mentions
    assert len(mentions) == 100 and len(set(mentions)) == 100 and all(m.startswith("https://") for m in mentions)


def test_a_message_to_a_village_only_is_direct_not_public_in_it() -> None:
    groups = {"https://a.test/villages/north": "https://a.test/villages/north/followers"}
    base = {"id": "https://b.test/users/cedar/statuses/9", "type": "Note", "attributedTo": "https://b.test/users/cedar",
            "content": "<p>@north une question</p>",
            "tag": [{"type": "Mention", "href": "https://a.test/villages/north"}]}
    followers = "https://b.test/users/cedar/followers"
    for addressing in ({"to": ["https://a.test/villages/north"]},
                       {"to": "https://a.test/villages/north", "audience": "https://a.test/villages/north"},
                       {"to": ["https://a.test/villages/north"], "cc": ["https://a.test/users/alder"]}):
        assert visibility_of(parse_note({**base, **addressing}), followers, groups) == ("direct", None), addressing
    # what we send for a public village post (to the village's followers) and Lemmy's shape stay public
    ours = {"to": ["https://a.test/villages/north/followers"], "cc": [followers],
            "audience": "https://a.test/villages/north"}
    lemmy = {"to": ["https://a.test/villages/north", "https://www.w3.org/ns/activitystreams#Public"]}
    by_audience = {"to": [followers], "audience": "https://a.test/villages/north"}
    for addressing in (ours, lemmy, by_audience):
        found = visibility_of(parse_note({**base, **addressing}), followers, groups)
        assert found == ("public", "https://a.test/villages/north"), addressing
    # to the author's followers and the village, without audience: still the village's
    both = {"to": [followers, "https://a.test/villages/north"]}
    assert visibility_of(parse_note({**base, **both}), followers, groups) == ("public", "https://a.test/villages/north")
