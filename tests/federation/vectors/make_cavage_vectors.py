"""Regenerate cavage_cases.json: draft-cavage signature cases signed with Mastodon's published test key.

Run from the repository root: ``.venv/bin/python tests/federation/vectors/make_cavage_vectors.py``.

The key (mastodon_spec_key.pem) and the first cases come from Mastodon's
spec/requests/signature_verification_spec.rb (its clock is frozen at 2023-12-20T10:00:00Z); the
signature values it publishes are reproduced here and checked. The other cases are ours. This script
uses only ``cryptography`` and writes each signing string out literally, independently of
``voisinage.federation.signatures``: PKCS#1 v1.5 is deterministic, so the values are fixed.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HERE = Path(__file__).parent
KEY_ID = "https://remote.domain/users/bob#main-key"
NOW = "2023-12-20T10:00:00Z"
DATE = "Wed, 20 Dec 2023 10:00:00 GMT"
HOST = "www.example.com"
CREATED = 1703066400  # == NOW
HELLO_DIGEST = "SHA-256=" + base64.b64encode(hashlib.sha256(b"Hello world").digest()).decode()
HELLO_SHA512 = "SHA-512=" + base64.b64encode(hashlib.sha512(b"Hello world").digest()).decode()

# Signature values published in Mastodon's spec, to be reproduced byte for byte.
MASTODON_PUBLISHED = {
    "get": "Z8ilar3J7bOwqZkMp7sL8sRs4B1FT+UorbmvWoE+A5UeoOJ3KBcUmbsh+k3wQwbP5gMNUrra9rEWabpasZGphLsbDxfbsWL3Cf0PllAc7c1c7AFEwnewtExI83/qqgEkfWc2z7UDutXc2NfgAx89Ox8DXU/fA2GG0jILjB6UpFyNugkY9rg6oI31UnvfVi3R7sr3/x8Ea3I9thPvqI2byF6cojknSpDAwYzeKdngX3TAQEGzFHz3SDWwyp3jeMWfwvVVbM38FxhvAnSumw7YwWW4L7M7h4M68isLimoT3yfCn2ucBVL5Dz8koBpYf/40w7QidClAwCafZQFC29yDOg==",
    "get_query": "SDMa4r/DQYMXYxVgYO2yEqGWWUXugKjVuz0I8dniQAk+aunzBaF2aPu+4grBfawAshlx1Xytl8lhb0H2MllEz16/tKY7rUrb70MK0w8ohXgpb0qs3YvQgdj4X24L1x2MnkFfKHR/J+7TBlnivq0HZqXm8EIkPWLv+eQxu8fbowLwHIVvRd/3t6FzvcfsE0UZKkoMEX02542MhwSif6cu7Ec/clsY9qgKahb9JVGOGS1op9Lvg/9y1mc8KCgD83U5IxVygYeYXaVQ6gixA9NgZiTCwEWzHM5ELm7w5hpdLFYxYOHg/3G3fiqJzpzNQAcCD4S4JxfE7hMI0IzVlNLT6A==",
    "wrong_date": "d4B7nfx8RJcfdJDu1J//5WzPzK/hgtPkdzZx49lu5QhnE7qdV3lgyVimmhCFrO16bwvzIp9iRMyRLkNFxLiEeVaa1gqeKbldGSnU0B0OMjx7rFBa65vLuzWQOATDitVGiBEYqoK4v0DMuFCz2DtFaA/DIUZ3sty8bZ/Ea3U1nByLOO6MacARA3zhMSI0GNxGqsSmZmG0hPLavB3jIXoE3IDoQabMnC39jrlcO/a8h1iaxBm2WD8TejrImJullgqlJIFpKhIHI3ipQkvTGPlm9dx0y+beM06qBvWaWQcmT09eRIUefVsOAzIhUtS/7FVb/URhZvircIJDa7vtiFcmZQ==",
    "old_date": "G1NuJv4zgoZ3B/ZIjzDWZHK4RC+5pYee74q8/LJEMCWXhcnAomcb9YHaqk1QYfQvcBUIXw3UZ3Q9xO8F9y0i8G5mzJHfQ+OgHqCoJk8EmGwsUXJMh5s1S5YFCRt8TT12TmJZz0VMqLq85ubueSYBM7QtUE/FzFIVLvz4RysgXxaXQKzdnM6+gbUEEKdCURpXdQt2NXQhp4MAmZH3+0lQoR6VxdsK0hx0Ji2PNp1nuqFTlYqNWZazVdLBN+9rETLRmvGXknvg9jOxTTppBVWnkAIl26HtLS3wwFVvz4pJzi9OQDOvLziehVyLNbU61hky+oJ215e2HuKSe2hxHNl1MA==",
    "post": "gmhMjgMROGElJU3fpehV2acD5kMHeELi8EFP2UPHOdQ54H0r55AxIpji+J3lPe+N2qSb/4H1KXIh6f0lRu8TGSsu12OQmg5hiO8VA9flcA/mh9Lpk+qwlQZIPRqKP9xUEfqD+Z7ti5wPzDKrWAUK/7FIqWgcT/mlqB1R1MGkpMFc/q4CIs2OSNiWgA4K+Kp21oQxzC2kUuYob04gAZ7cyE/FTia5t08uv6lVYFdRsn4XNPn1MsHgFBwBMRG79ng3SyhoG4PrqBEi5q2IdLq3zfre/M6He3wlCpyO2VJNdGVoTIzeZ0Zz8jUscPV3XtWUchpGclLGSaKaq/JyNZeiYQ==",
    "post_digest_unsigned": "CPD704CG8aCm8X8qIP8kkkiGp1qwFLk/wMVQHOGP0Txxan8c2DZtg/KK7eN8RG8tHx8br/yS2hJs51x4kXImYukGzNJd7ihE3T8lp+9RI1tCcdobTzr/VcVJHDFySdQkg266GCMijRQRZfNvqlJLiisr817PI+gNVBI5qV+vnVd1XhWCEZ+YSmMe8UqYARXAYNqMykTheojqGpTeTFGPUpTQA2Fmt2BipwIjcFDm2Hpihl2kB0MUS0x3zPmHDuadvzoBbN6m3usPDLgYrpALlh+wDs1dYMntcwdwawRKY1oE1XNtgOSum12wntDq3uYL4gya2iPdcw3c929b4koUzw==",
}


def case(name: str, origin: str, *, signed_target: str, names: list[str], headers: dict[str, str],
         sent_method: str | None = None, sent_path: str | None = None, body: str = "",
         algorithm: str = "rsa-sha256", created: int | None = None, expires: int | None = None,
         expect: str = "ok", reason: str = "", mastodon: str | None = None,
         published: str | None = None, signature_header: str | None = None) -> dict[str, Any]:
    """One case: what was signed (signed_target = "method path") and what is sent."""
    method, path = signed_target.split(" ", 1)
    return {
        "name": name, "origin": origin, "now": NOW,
        "signed": {"method": method, "path": path, "headers": names, "algorithm": algorithm,
                   "created": created, "expires": expires},
        "request": {"method": sent_method or method.upper(), "path": sent_path or path,
                    "headers": headers, "body": body},
        "expect": expect, "reason": reason,
        # what Mastodon does with the same request, when it differs from us
        "mastodon": mastodon or expect,
        "published_signature": published,
        "signature_header": signature_header,
    }


def signing_string(c: dict[str, Any]) -> str:
    signed, headers = c["signed"], {k.lower(): v for k, v in c["request"]["headers"].items()}
    lines = []
    for name in signed["headers"]:
        if name == "(request-target)":
            lines.append(f"(request-target): {signed['method']} {signed['path']}")
        elif name == "(created)":
            lines.append(f"(created): {signed['created']}")
        elif name == "(expires)":
            lines.append(f"(expires): {signed['expires']}")
        else:
            lines.append(f"{name}: {headers[name]}")
    return "\n".join(lines)


def sign(c: dict[str, Any], key: rsa.RSAPrivateKey) -> None:
    text = signing_string(c)
    value = base64.b64encode(key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
    if c["published_signature"] is not None:
        assert value == c["published_signature"], f"{c['name']}: Mastodon's value not reproduced"
    signed = c["signed"]
    parts = [f'keyId="{KEY_ID}"', f'algorithm="{signed["algorithm"]}"']
    parts += [f"{n}={signed[n]}" for n in ("created", "expires") if signed[n] is not None]
    parts += [f'headers="{" ".join(signed["headers"])}"', f'signature="{value}"']
    c["signing_string"] = text
    c["request"]["headers"]["Signature"] = c.pop("signature_header") or ",".join(parts)


def cases() -> list[dict[str, Any]]:
    m, v = "mastodon signature_verification_spec.rb", "voisinage"
    get_h = {"Date": DATE, "Host": HOST}
    post_h = {"Host": HOST, "Date": DATE, "Digest": HELLO_DIGEST}
    dhr = ["date", "host", "(request-target)"]
    hddr = ["host", "date", "digest", "(request-target)"]
    out = [
        case("valid GET", m, signed_target="get /activitypub/success", names=dhr, headers=dict(get_h),
             published=MASTODON_PUBLISHED["get"]),
        case("valid GET with a query string", m, signed_target="get /activitypub/success?foo=42",
             names=dhr, headers=dict(get_h), published=MASTODON_PUBLISHED["get_query"]),
        case("query string missing from the signature (Mastodon compatibility quirk)", m,
             signed_target="get /activitypub/success", sent_path="/activitypub/success?foo=42",
             names=dhr, headers=dict(get_h), published=MASTODON_PUBLISHED["get"],
             expect="refused", reason="signature does not match", mastodon="ok"),
        case("mismatching query string", m, signed_target="get /activitypub/success?foo=42",
             sent_path="/activitypub/success?foo=43", names=dhr, headers=dict(get_h),
             published=MASTODON_PUBLISHED["get_query"], expect="refused",
             reason="signature does not match"),
        case("mismatching path", m, signed_target="get /activitypub/success",
             sent_path="/activitypub/alternative-path", names=dhr, headers=dict(get_h),
             published=MASTODON_PUBLISHED["get"], expect="refused", reason="signature does not match"),
        case("mismatching method", m, signed_target="get /activitypub/success", sent_method="POST",
             names=dhr, headers=dict(get_h), published=MASTODON_PUBLISHED["get"],
             expect="refused", reason="digest"),
        case("unparsable date", m, signed_target="get /activitypub/success", names=dhr,
             headers={"Date": "wrong date", "Host": HOST}, published=MASTODON_PUBLISHED["wrong_date"],
             expect="refused", reason="Date header is not an HTTP date"),
        case("request older than a day", m, signed_target="get /activitypub/success", names=dhr,
             headers={"Date": "Wed, 18 Dec 2023 10:00:00 GMT", "Host": HOST},
             published=MASTODON_PUBLISHED["old_date"], expect="refused", reason="Date is too old"),
        case("valid POST with digest", m, signed_target="post /activitypub/success", names=hddr,
             headers=dict(post_h), body="Hello world", published=MASTODON_PUBLISHED["post"]),
        case("Digest of a POST not signed", m, signed_target="post /activitypub/success",
             names=["host", "date", "(request-target)"], headers=dict(post_h), body="Hello world",
             published=MASTODON_PUBLISHED["post_digest_unsigned"], expect="refused",
             reason="must cover digest"),
        case("tampered body on a POST", m, signed_target="post /activitypub/success", names=hddr,
             headers=dict(post_h), body="Hello world!", published=MASTODON_PUBLISHED["post"],
             expect="refused", reason="Digest does not match the body"),
        case("tampered path on a POST", m, signed_target="post /activitypub/success",
             sent_path="/activitypub/alternative-path", names=hddr, headers=dict(post_h),
             body="Hello world", published=MASTODON_PUBLISHED["post"], expect="refused",
             reason="signature does not match"),
        # ---- our own cases, same key and clock
        case("hs2019 with (created) instead of Date", v, signed_target="post /inbox",
             names=["(request-target)", "host", "(created)", "digest"], algorithm="hs2019",
             created=CREATED, headers={"Host": HOST, "Digest": HELLO_DIGEST}, body="Hello world"),
        case("hs2019 with (created) and (expires) still valid", v, signed_target="get /actor",
             names=["(request-target)", "host", "(created)", "(expires)"], algorithm="hs2019",
             created=CREATED - 60, expires=CREATED + 240, headers={"Host": HOST}),
        case("hs2019 whose expires has passed", v, signed_target="get /actor",
             names=["(request-target)", "host", "(created)", "(expires)"], algorithm="hs2019",
             created=CREATED - 600, expires=CREATED - 300, headers={"Host": HOST},
             expect="refused", reason="expired"),
        case("(created) with rsa-sha256 (algorithm mismatch)", v, signed_target="get /actor",
             names=["(request-target)", "host", "(created)"], created=CREATED, headers={"Host": HOST},
             expect="refused", reason="not allowed with rsa-sha256"),
        case("algorithm rsa-sha1", v, signed_target="get /actor", algorithm="rsa-sha1",
             names=["(request-target)", "host", "date"], headers=dict(get_h), expect="refused",
             reason="algorithm rsa-sha1 is not accepted"),
        case("algorithm hmac-sha256", v, signed_target="get /actor", algorithm="hmac-sha256",
             names=["(request-target)", "host", "date"], headers=dict(get_h), expect="refused",
             reason="algorithm hmac-sha256 is not accepted"),
        case("header set too weak: no (request-target)", v, signed_target="get /actor",
             names=["host", "date"], headers=dict(get_h), expect="refused",
             reason="must cover (request-target)"),
        case("header set too weak: no host", v, signed_target="get /actor",
             names=["(request-target)", "date"], headers=dict(get_h), expect="refused",
             reason="must cover host"),
        case("header set too weak: no date", v, signed_target="get /actor",
             names=["(request-target)", "host"], headers=dict(get_h), expect="refused",
             reason="must cover date or (created)"),
        case("Date 59 minutes ahead is within the skew", v, signed_target="get /actor",
             names=["(request-target)", "host", "date"],
             headers={"Host": HOST, "Date": "Wed, 20 Dec 2023 10:59:00 GMT"}),
        case("Date 61 minutes ahead", v, signed_target="get /actor",
             names=["(request-target)", "host", "date"],
             headers={"Host": HOST, "Date": "Wed, 20 Dec 2023 11:01:00 GMT"},
             expect="refused", reason="Date is too far in the future"),
        case("Date 64 minutes old is within 5 min + 1 h", v, signed_target="get /actor",
             names=["(request-target)", "host", "date"],
             headers={"Host": HOST, "Date": "Wed, 20 Dec 2023 08:56:00 GMT"}),
        case("Date 66 minutes old", v, signed_target="get /actor",
             names=["(request-target)", "host", "date"],
             headers={"Host": HOST, "Date": "Wed, 20 Dec 2023 08:54:00 GMT"},
             expect="refused", reason="Date is too old"),
        case("extra signed headers content-type and accept", v, signed_target="post /inbox",
             names=["(request-target)", "host", "date", "digest", "content-type", "accept"],
             headers={"Host": HOST, "Date": DATE, "Digest": HELLO_DIGEST,
                      "Content-Type": "application/activity+json", "Accept": "*/*"},
             body="Hello world"),
        case("lower-case sha-256 digest (bovine)", v, signed_target="post /inbox",
             names=["(request-target)", "host", "date", "digest"],
             headers={"Host": HOST, "Date": DATE, "Digest": "sha-256=" + HELLO_DIGEST[8:]},
             body="Hello world"),
        case("Digest listing SHA-512 and SHA-256", v, signed_target="post /inbox",
             names=["(request-target)", "host", "date", "digest"],
             headers={"Host": HOST, "Date": DATE, "Digest": f"{HELLO_SHA512},{HELLO_DIGEST}"},
             body="Hello world"),
        case("Digest with SHA-512 only", v, signed_target="post /inbox",
             names=["(request-target)", "host", "date", "digest"],
             headers={"Host": HOST, "Date": DATE, "Digest": HELLO_SHA512}, body="Hello world",
             expect="refused", reason="Digest has no SHA-256 value"),
        case("POST without Digest header", v, signed_target="post /inbox",
             names=["(request-target)", "host", "date"], headers={"Host": HOST, "Date": DATE},
             body="Hello world", expect="refused", reason="must cover digest"),
        case("signed header missing from the request", v, signed_target="get /actor",
             names=["(request-target)", "host", "date", "accept"],
             headers=dict(get_h, Accept="application/activity+json"), expect="refused", reason="signed header accept is missing"),
        case("no algorithm parameter is read as hs2019", v, signed_target="get /actor",
             names=["(request-target)", "host", "date"], headers=dict(get_h),
             signature_header=None),
        case("header names and parameters in another order, with spaces", v,
             signed_target="get /actor", names=["(request-target)", "host", "date"],
             headers=dict(get_h)),
    ]
    return out


def sign_request_cases(key: rsa.RSAPrivateKey) -> list[dict[str, Any]]:
    """Expected output of sign_request: what Mastodon's Request class would send."""
    specs = [
        ("GET", "https://www.example.com/users/bob?page=1", "www.example.com", "/users/bob?page=1",
         {"Accept": "application/activity+json"}, ""),
        ("POST", "http://localhost:18081/inbox", "localhost:18081", "/inbox",
         {"Content-Type": "application/activity+json"}, '{"type":"Follow"}'),
        ("POST", "https://Remote.Example:8443/users/a/inbox", "remote.example:8443", "/users/a/inbox",
         {"Content-Type": "application/activity+json"}, "Hello world"),
    ]
    out = []
    for method, url, host, target, given, body in specs:
        expected = dict(given, Host=host, Date=DATE)
        names = ["(request-target)", "host", "date"]
        lines = [f"(request-target): {method.lower()} {target}", f"host: {host}", f"date: {DATE}"]
        if method == "POST":
            digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
            expected["Digest"] = digest
            names.append("digest")
            lines.append(f"digest: {digest}")
        raw = key.sign("\n".join(lines).encode(), padding.PKCS1v15(), hashes.SHA256())
        expected["Signature"] = (
            f'keyId="{KEY_ID}",algorithm="rsa-sha256",headers="{" ".join(names)}",'
            f'signature="{base64.b64encode(raw).decode()}"'
        )
        out.append({"method": method, "url": url, "headers": given, "body": body, "now": NOW,
                    "key_id": KEY_ID, "expected_headers": expected})
    return out


def main() -> None:
    key = serialization.load_pem_private_key((HERE / "mastodon_spec_key.pem").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    all_cases = cases()
    for c in all_cases:
        sign(c, key)
    # Accept is signed, then dropped from the request as sent.
    dropped = next(c for c in all_cases if c["name"].startswith("signed header missing"))
    del dropped["request"]["headers"]["Accept"]
    # Two cases need a hand-written header around the computed signature value.
    no_alg = next(c for c in all_cases if c["name"].startswith("no algorithm"))
    no_alg["request"]["headers"]["Signature"] = ",".join(
        p for p in no_alg["request"]["headers"]["Signature"].split(",") if not p.startswith("algorithm=")
    )
    reorder = next(c for c in all_cases if c["name"].startswith("header names and parameters"))
    parts = dict(p.split("=", 1) for p in reorder["request"]["headers"]["Signature"].split(","))
    reorder["request"]["headers"]["Signature"] = (
        f'signature = {parts["signature"]} ,  headers={parts["headers"]},'
        f'algorithm={parts["algorithm"]}, keyId={parts["keyId"]}'
    )
    (HERE / "cavage_cases.json").write_text(json.dumps(all_cases, indent=2) + "\n")
    signing = sign_request_cases(key)
    (HERE / "sign_request_cases.json").write_text(json.dumps(signing, indent=2) + "\n")
    print(f"wrote {len(all_cases)} verification cases and {len(signing)} signing cases")


if __name__ == "__main__":
    main()
