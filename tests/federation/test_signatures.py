"""HTTP signatures: Mastodon's published cases, our own vectors, refusals and sign->verify loops."""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict

from voisinage.federation import keys
from voisinage.federation.signatures import (
    SignatureError,
    build_signing_string,
    digest_header,
    http_date,
    key_id_of,
    parse_signature_header,
    sign_cavage,
    sign_request,
    sign_request_rfc9421,
    verify_request,
)

VECTORS = Path(__file__).parent / "vectors"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "peers"
MASTODON_PEM = (VECTORS / "mastodon_spec_key.pem").read_text()
MASTODON_PUBLIC = keys.public_pem_of(MASTODON_PEM)
MASTODON_KEY = keys.load_private(MASTODON_PEM)  # loading validates the key (slow): once
HERD_PUBLIC = json.loads((FIXTURES / "herd_actor_alice.json").read_text())["publicKey"]["publicKeyPem"]
CASES: list[dict[str, Any]] = json.loads((VECTORS / "cavage_cases.json").read_text())
SIGN_CASES: list[dict[str, Any]] = json.loads((VECTORS / "sign_request_cases.json").read_text())
NOW = dt.datetime(2023, 12, 20, 10, 0, tzinfo=dt.UTC)
KEY_ID = "https://remote.domain/users/bob#main-key"


def _when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _verify_case(case: dict[str, Any], public: Any = MASTODON_PUBLIC) -> Any:
    req = case["request"]
    return verify_request(req["method"], req["path"], req["headers"], req["body"].encode(), public,
                          now=_when(case["now"]))


def _case(name: str) -> dict[str, Any]:
    return next(c for c in CASES if c["name"] == name)


# --------------------------------------------------------------------------- vectors


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_vector_verifies_or_is_refused_as_expected(case: dict[str, Any]) -> None:
    if case["expect"] == "ok":
        verified = _verify_case(case)
        assert verified.key_id == KEY_ID
        assert verified.scheme == "cavage"
        assert list(verified.signed_headers) == case["signed"]["headers"]
    else:
        with pytest.raises(SignatureError, match=re.escape(case["reason"])):
            _verify_case(case)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_signer_reproduces_vector_signature_byte_for_byte(case: dict[str, Any]) -> None:
    signed, req = case["signed"], case["request"]
    headers = dict(req["headers"])
    if case["name"].startswith("signed header missing"):
        headers["Accept"] = "application/activity+json"  # it was signed, then dropped
    text = build_signing_string(signed["method"], signed["path"], headers, signed["headers"],
                                created=signed["created"], expires=signed["expires"])
    assert text == case["signing_string"]
    value = sign_cavage(signed["method"], signed["path"], headers, signed["headers"], KEY_ID,
                        MASTODON_KEY, algorithm=signed["algorithm"], created=signed["created"],
                        expires=signed["expires"])
    mine = parse_signature_header(value)["signature"]
    assert mine == parse_signature_header(req["headers"]["Signature"])["signature"]
    if case["published_signature"]:
        assert base64.b64encode(mine).decode() == case["published_signature"]


def test_vectors_cover_mastodons_published_cases_and_its_one_quirk() -> None:
    published = [c for c in CASES if c["published_signature"]]
    assert len(published) == 12
    divergent = [c["name"] for c in CASES if c["mastodon"] != c["expect"]]
    assert divergent == ["query string missing from the signature (Mastodon compatibility quirk)"]


@pytest.mark.parametrize("case", SIGN_CASES, ids=[c["url"] for c in SIGN_CASES])
def test_sign_request_reproduces_fixed_headers(case: dict[str, Any]) -> None:
    out = sign_request(case["method"], case["url"], case["headers"], case["body"].encode(),
                       case["key_id"], MASTODON_PEM, now=_when(case["now"]))
    assert out == case["expected_headers"]


# --------------------------------------------------------------------------- keys and key ids


def test_signature_by_another_key_is_refused() -> None:
    with pytest.raises(SignatureError, match="signature does not match"):
        _verify_case(_case("valid GET"), HERD_PUBLIC)


def test_cavage_signature_with_an_ed25519_key_is_refused() -> None:
    _, multikey = keys.generate_ed25519()
    with pytest.raises(SignatureError, match="need an RSA key"):
        _verify_case(_case("valid GET"), keys.multikey_to_public(multikey))


def test_garbage_public_key_is_refused() -> None:
    with pytest.raises(SignatureError, match="unusable public key"):
        _verify_case(_case("valid GET"), "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----")


def test_key_id_of_unsigned_request_is_refused() -> None:
    with pytest.raises(SignatureError, match="not signed"):
        key_id_of({"Host": "a.test", "Date": http_date(NOW)})
    with pytest.raises(SignatureError, match="not signed"):
        verify_request("POST", "/inbox", {"Host": "a.test"}, b"{}", MASTODON_PUBLIC, now=NOW)


def test_key_id_of_reads_both_schemes_case_insensitively() -> None:
    cavage = sign_request("GET", "https://b.test/x", {}, b"", "https://a.test/u#k", MASTODON_KEY)
    assert key_id_of({k.upper(): v for k, v in cavage.items()}) == ("https://a.test/u#k", "cavage")
    rfc = sign_request_rfc9421("GET", "https://b.test/x", {}, b"", "https://a.test/u#k2", MASTODON_KEY)
    assert key_id_of(rfc) == ("https://a.test/u#k2", "rfc9421")


def test_signature_input_without_signature_is_refused() -> None:
    rfc = sign_request_rfc9421("GET", "https://b.test/x", {}, b"", "k", MASTODON_KEY)
    del rfc["Signature"]
    with pytest.raises(SignatureError, match="without Signature"):
        key_id_of(rfc)


# --------------------------------------------------------------------------- parsing


def test_parse_tolerates_spaces_order_and_unquoted_numbers() -> None:
    params = parse_signature_header(
        ' headers="(request-target) Host (created)" , created=1703066400,keyId="k" ,'
        ' algorithm="hs2019", expires="1703066700", signature="AAEC", ext="ignored"'
    )
    assert params == {"keyId": "k", "algorithm": "hs2019", "headers": ["(request-target)", "host", "(created)"],
                      "signature": b"\x00\x01\x02", "created": 1703066400, "expires": 1703066700}


def test_parse_defaults_headers_to_date_and_algorithm_to_none() -> None:
    params = parse_signature_header('keyId="k",signature="AAEC"')
    assert params["headers"] == ["date"] and params["algorithm"] is None


@pytest.mark.parametrize("value", [
    "",
    "garbage",
    'keyId=k,signature="AAEC"',
    'keyId="k",signature="AAEC",',
    'keyId="k" signature="AAEC"',
    'keyId="k",keyId="j",signature="AAEC"',
    'keyId="k",headers=date,signature="AAEC"',
    'signature="AAEC"',
    'keyId="k"',
    'keyId="",signature="AAEC"',
    'keyId="k",signature="not base64!"',
    'keyId="k",signature="AAEC",created="soon"',
    'keyId="k",signature="AAEC",headers=""',
    'keyId="k\\"x",signature="AAEC"',
    "keyId='k',signature='AAEC'",
])
def test_parse_refuses_malformed_headers(value: str) -> None:
    with pytest.raises(SignatureError):
        parse_signature_header(value)


# --------------------------------------------------------------------------- signing


def test_sign_request_host_keeps_explicit_port_and_date_is_rfc7231() -> None:
    out = sign_request("GET", "http://LocalHost:18081/users/a?page=2", {}, b"", "k", MASTODON_KEY, now=NOW)
    assert out["Host"] == "localhost:18081"
    assert out["Date"] == "Wed, 20 Dec 2023 10:00:00 GMT"
    assert "Digest" not in out
    assert parse_signature_header(out["Signature"])["headers"] == ["(request-target)", "host", "date"]
    verified = verify_request("GET", "/users/a?page=2", out, b"", MASTODON_PUBLIC, now=NOW)
    assert verified.signed_headers == ("(request-target)", "host", "date")


def test_sign_request_post_adds_digest_and_replaces_stale_headers() -> None:
    given = {"host": "evil.test", "DATE": "yesterday", "signature": "old", "Content-Type": "application/activity+json"}
    out = sign_request("post", "https://b.test/inbox", given, b"Hello world", "k", MASTODON_KEY, now=NOW)
    assert {k.lower() for k in out} == {"host", "date", "digest", "signature", "content-type"}
    assert out["Digest"] == digest_header(b"Hello world") == "SHA-256=ZOyIygCyaOW6GjVnihtTFtIS9PNmskdyMlNKiuyjfzw="
    assert parse_signature_header(out["Signature"])["headers"] == ["(request-target)", "host", "date", "digest"]
    assert given["host"] == "evil.test"  # the input is not modified


def test_sign_request_refuses_relative_urls_and_non_rsa_keys() -> None:
    with pytest.raises(ValueError):
        sign_request("GET", "/inbox", {}, b"", "k", MASTODON_KEY)
    ed_pem, _ = keys.generate_ed25519()
    with pytest.raises(keys.KeyFormatError):
        sign_request("GET", "https://b.test/", {}, b"", "k", ed_pem)


# --------------------------------------------------------------------------- verification rules


def _signed_post(body: bytes = b'{"type":"Follow"}', now: dt.datetime = NOW) -> dict[str, str]:
    return sign_request("POST", "https://b.test/inbox", {"Content-Type": "application/activity+json"},
                        body, KEY_ID, MASTODON_KEY, now=now)


def test_headers_may_be_a_multidict_or_any_casing() -> None:
    out = _signed_post()
    multi = CIMultiDict((k.lower(), v) for k, v in out.items())
    assert verify_request("POST", "/inbox", multi, b'{"type":"Follow"}', MASTODON_PUBLIC, now=NOW).key_id == KEY_ID
    upper = {k.upper(): v for k, v in out.items()}
    assert verify_request("post", "/inbox", upper, b'{"type":"Follow"}', MASTODON_PUBLIC, now=NOW).key_id == KEY_ID


def test_expected_host_must_match_the_signed_host() -> None:
    out = _signed_post()
    assert verify_request("POST", "/inbox", out, b'{"type":"Follow"}', MASTODON_PUBLIC, now=NOW,
                          expected_host="B.test").key_id == KEY_ID
    with pytest.raises(SignatureError, match="Host is not this server"):
        verify_request("POST", "/inbox", out, b'{"type":"Follow"}', MASTODON_PUBLIC, now=NOW,
                       expected_host="b.test:8443")


def test_changed_signed_header_is_refused() -> None:
    out = _signed_post()
    out["Host"] = "c.test"
    with pytest.raises(SignatureError, match="signature does not match"):
        verify_request("POST", "/inbox", out, b'{"type":"Follow"}', MASTODON_PUBLIC, now=NOW)


def test_digest_that_is_not_base64_is_refused() -> None:
    out = _signed_post()
    out["Digest"] = "SHA-256=***"
    with pytest.raises(SignatureError, match="not valid base64"):
        verify_request("POST", "/inbox", out, b'{"type":"Follow"}', MASTODON_PUBLIC, now=NOW)


def test_body_on_a_get_needs_a_signed_digest() -> None:
    out = sign_request("GET", "https://b.test/x", {}, b"", KEY_ID, MASTODON_KEY, now=NOW)
    with pytest.raises(SignatureError, match="must cover digest"):
        verify_request("GET", "/x", out, b"smuggled", MASTODON_PUBLIC, now=NOW)


def test_signature_is_checked_against_the_real_clock_by_default() -> None:
    out = _signed_post(now=dt.datetime.now(dt.UTC))
    assert verify_request("POST", "/inbox", out, b'{"type":"Follow"}', MASTODON_PUBLIC).key_id == KEY_ID
    with pytest.raises(SignatureError, match="too old"):
        verify_request("POST", "/inbox", _signed_post(), b'{"type":"Follow"}', MASTODON_PUBLIC)


def test_random_bodies_sign_then_verify_and_any_flipped_byte_fails() -> None:
    rng = random.Random(8)
    for _ in range(50):
        body = rng.randbytes(rng.randint(1, 400))
        out = _signed_post(body)
        assert verify_request("POST", "/inbox", out, body, MASTODON_PUBLIC, now=NOW).key_id == KEY_ID
        flipped = bytearray(body)
        flipped[rng.randrange(len(body))] ^= 1 << rng.randrange(8)
        with pytest.raises(SignatureError, match="Digest does not match"):
            verify_request("POST", "/inbox", out, bytes(flipped), MASTODON_PUBLIC, now=NOW)


def test_random_signature_bit_flips_fail() -> None:
    rng = random.Random(9)
    out = _signed_post()
    raw = bytearray(parse_signature_header(out["Signature"])["signature"])
    for _ in range(20):
        bad = bytearray(raw)
        bad[rng.randrange(len(bad))] ^= 1 << rng.randrange(8)
        tampered = dict(out)
        tampered["Signature"] = out["Signature"].rsplit('signature="', 1)[0] + (
            f'signature="{base64.b64encode(bytes(bad)).decode()}"')
        with pytest.raises(SignatureError, match="signature does not match"):
            verify_request("POST", "/inbox", tampered, b'{"type":"Follow"}', MASTODON_PUBLIC, now=NOW)


# --------------------------------------------------------------------------- RFC 9421

ED_PEM, ED_MULTIKEY = keys.generate_ed25519()
ED_PUBLIC = keys.multikey_to_public(ED_MULTIKEY)


@pytest.mark.parametrize(("algorithm", "private", "public"), [
    ("rsa-v1_5-sha256", MASTODON_KEY, MASTODON_PUBLIC),
    ("rsa-pss-sha512", MASTODON_KEY, MASTODON_PUBLIC),
    ("ed25519", ED_PEM, ED_PUBLIC),
])
def test_rfc9421_round_trip_and_tampered_body(algorithm: str, private: str, public: Any) -> None:
    body = b'{"type":"Create"}'
    out = sign_request_rfc9421("POST", "https://b.test:8443/inbox?x=1", {"Content-Type": "application/activity+json"},
                               body, KEY_ID, private, algorithm=algorithm, now=NOW)
    assert out["Content-Digest"].startswith("sha-256=:")
    verified = verify_request("POST", "/inbox?x=1", out, body, public, now=NOW)
    assert (verified.scheme, verified.algorithm, verified.key_id) == ("rfc9421", algorithm, KEY_ID)
    assert set(verified.signed_headers) == {"@method", "@target-uri", "content-digest"}
    with pytest.raises(SignatureError, match="Content-Digest does not match"):
        verify_request("POST", "/inbox?x=1", out, body + b" ", public, now=NOW)


def test_rfc9421_algorithm_follows_the_key_when_alg_is_absent() -> None:
    pairs: list[tuple[Any, Any, str]] = [
        (ED_PEM, ED_PUBLIC, "ed25519"), (MASTODON_KEY, MASTODON_PUBLIC, "rsa-v1_5-sha256")]
    for private, public, expected in pairs:
        out = sign_request_rfc9421("GET", "https://b.test/u", {}, b"", KEY_ID, private, now=NOW, include_alg=False)
        assert "alg=" not in out["Signature-Input"]
        assert verify_request("GET", "/u", out, b"", public, now=NOW).algorithm == expected


def test_rfc9421_refuses_wrong_key_path_host_and_scheme() -> None:
    out = sign_request_rfc9421("GET", "https://b.test/u", {}, b"", KEY_ID, MASTODON_KEY, now=NOW)
    assert verify_request("GET", "/u", out, b"", MASTODON_PUBLIC, now=NOW).key_id == KEY_ID
    attempts = [
        ("/u", dict(out), HERD_PUBLIC, "https"),
        ("/v", dict(out), MASTODON_PUBLIC, "https"),
        ("/u", dict(out, Host="c.test"), MASTODON_PUBLIC, "https"),
        ("/u", dict(out), MASTODON_PUBLIC, "http"),
    ]
    for path, headers, public, scheme in attempts:
        with pytest.raises(SignatureError, match="RFC 9421 signature refused"):
            verify_request("GET", path, headers, b"", public, now=NOW, scheme=scheme)


def test_rfc9421_coverage_rules() -> None:
    no_method = sign_request_rfc9421("GET", "https://b.test/u", {}, b"", KEY_ID, ED_PEM, now=NOW,
                                     covered=("@target-uri",))
    with pytest.raises(SignatureError, match="must cover @method"):
        verify_request("GET", "/u", no_method, b"", ED_PUBLIC, now=NOW)
    path_only = sign_request_rfc9421("GET", "https://b.test/u", {}, b"", KEY_ID, ED_PEM, now=NOW,
                                     covered=("@method", "@path"))
    with pytest.raises(SignatureError, match="@path and @authority"):
        verify_request("GET", "/u", path_only, b"", ED_PUBLIC, now=NOW)
    path_authority = sign_request_rfc9421("GET", "https://b.test/u", {}, b"", KEY_ID, ED_PEM, now=NOW,
                                          covered=("@method", "@path", "@authority"))
    assert verify_request("GET", "/u", path_authority, b"", ED_PUBLIC, now=NOW).key_id == KEY_ID
    no_digest = sign_request_rfc9421("GET", "https://b.test/u", {}, b"", KEY_ID, ED_PEM, now=NOW)
    with pytest.raises(SignatureError, match="must cover content-digest"):
        verify_request("POST", "/u", no_digest, b"{}", ED_PUBLIC, now=NOW)


def test_rfc9421_content_digest_must_have_sha256() -> None:
    out = sign_request_rfc9421("POST", "https://b.test/inbox", {}, b"{}", KEY_ID, ED_PEM, now=NOW)
    out["Content-Digest"] = "sha-512=:" + base64.b64encode(bytes(64)).decode() + ":"
    with pytest.raises(SignatureError, match="no sha-256"):
        verify_request("POST", "/inbox", out, b"{}", ED_PUBLIC, now=NOW)


def test_rfc9421_clock_window_and_expiry() -> None:
    out = sign_request_rfc9421("GET", "https://b.test/u", {}, b"", KEY_ID, ED_PEM, now=NOW,
                               expires_in=dt.timedelta(minutes=2))
    assert verify_request("GET", "/u", out, b"", ED_PUBLIC, now=NOW + dt.timedelta(minutes=1)).key_id == KEY_ID
    with pytest.raises(SignatureError, match="expired"):
        verify_request("GET", "/u", out, b"", ED_PUBLIC, now=NOW + dt.timedelta(minutes=3))
    with pytest.raises(SignatureError, match="too far in the future"):
        verify_request("GET", "/u", out, b"", ED_PUBLIC, now=NOW - dt.timedelta(minutes=61))
    plain = sign_request_rfc9421("GET", "https://b.test/u", {}, b"", KEY_ID, ED_PEM, now=NOW)
    with pytest.raises(SignatureError, match="too old"):
        verify_request("GET", "/u", plain, b"", ED_PUBLIC, now=NOW + dt.timedelta(minutes=66))


def test_rfc9421_refuses_unknown_algorithms_and_several_signatures() -> None:
    out = sign_request_rfc9421("GET", "https://b.test/u", {}, b"", KEY_ID, ED_PEM, now=NOW)
    hmac_alg = dict(out, **{"Signature-Input": out["Signature-Input"].replace("ed25519", "hmac-sha256")})
    with pytest.raises(SignatureError, match="algorithm hmac-sha256 is not accepted"):
        verify_request("GET", "/u", hmac_alg, b"", ED_PUBLIC, now=NOW)
    rest = out["Signature-Input"].split("=", 1)[1]
    two = dict(out, **{"Signature-Input": f"{out['Signature-Input']}, sig2={rest}",
                       "Signature": f"{out['Signature']}, sig2={out['Signature'].split('=', 1)[1]}"})
    with pytest.raises(SignatureError, match="exactly one"):
        verify_request("GET", "/u", two, b"", ED_PUBLIC, now=NOW)
    garbled = dict(out, **{"Signature-Input": "sig1=((("})
    with pytest.raises(SignatureError, match="malformed Signature-Input"):
        key_id_of(garbled)


def test_rfc9421_random_bodies_round_trip_and_flip() -> None:
    rng = random.Random(21)
    for _ in range(50):
        body = rng.randbytes(rng.randint(1, 300))
        out = sign_request_rfc9421("POST", "https://b.test/inbox", {}, body, KEY_ID, ED_PEM, now=NOW)
        assert verify_request("POST", "/inbox", out, body, ED_PUBLIC, now=NOW).key_id == KEY_ID
        flipped = bytearray(body)
        flipped[rng.randrange(len(body))] ^= 0x80
        with pytest.raises(SignatureError):
            verify_request("POST", "/inbox", out, bytes(flipped), ED_PUBLIC, now=NOW)


RFC_B26: dict[str, Any] = json.loads((VECTORS / "rfc9421_b26.json").read_text())


def test_rfc9421_b26_ed25519_example_is_reproduced_byte_for_byte() -> None:
    v = RFC_B26
    out = sign_request_rfc9421(v["method"], v["url"], v["headers"], v["body"].encode(), v["keyid"],
                               v["privateKeyPem"], now=dt.datetime.fromtimestamp(v["created"], dt.UTC),
                               covered=v["covered"], label=v["label"], include_alg=False, with_digest=False)
    assert out["Signature-Input"] == v["Signature-Input"]
    assert out["Signature"] == v["Signature"]
    assert key_id_of(out) == ("test-key-ed25519", "rfc9421")


def test_rfc9421_b26_example_is_refused_for_lacking_a_content_digest() -> None:
    v = RFC_B26
    headers = dict(v["headers"], **{"Signature-Input": v["Signature-Input"], "Signature": v["Signature"]})
    with pytest.raises(SignatureError, match="must cover content-digest"):
        verify_request("POST", "/foo?param=Value&Pet=dog", headers, v["body"].encode(), v["publicKeyPem"],
                       now=dt.datetime.fromtimestamp(v["created"], dt.UTC))
