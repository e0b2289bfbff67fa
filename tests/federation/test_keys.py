"""Key generation, PEM loading with clear refusals, and FEP-521a Multikey encoding."""

from __future__ import annotations

import base58
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from voisinage.federation import keys
from voisinage.federation.keys import KeyFormatError

# W3C vc-di-eddsa TestVectors/keyPair.json (also used by FEP-8b32's test vectors).
W3C_PUBLIC = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
W3C_PRIVATE = "z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq"


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def test_generate_rsa_gives_loadable_2048_bit_pems() -> None:
    private_pem, public_pem = keys.generate_rsa()
    assert private_pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert public_pem.startswith("-----BEGIN PUBLIC KEY-----")
    private, public = keys.load_private(private_pem), keys.load_rsa_public(public_pem)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048
    assert public.public_numbers() == private.public_key().public_numbers()
    assert keys.public_pem_of(private_pem) == public_pem


def test_generate_rsa_refuses_small_keys() -> None:
    with pytest.raises(KeyFormatError, match="at least 2048"):
        keys.generate_rsa(1024)


def test_pkcs1_pems_load_too() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pkcs1 = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption())
    public = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    assert isinstance(keys.load_private(pkcs1.decode()), rsa.RSAPrivateKey)
    assert isinstance(keys.load_public(public), rsa.RSAPublicKey)


@pytest.mark.parametrize("garbage", [
    "",
    "garbage",
    "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    "-----BEGIN PRIVATE KEY-----\n" + "é" * 10,
    b"\x00\xff" * 20,
])
def test_garbage_pem_raises_key_format_error(garbage: str | bytes) -> None:
    with pytest.raises(KeyFormatError, match="not a valid private key PEM"):
        keys.load_private(garbage)
    with pytest.raises(KeyFormatError, match="not a valid public key PEM"):
        keys.load_public(garbage)


def test_public_pem_is_not_a_private_key_and_vice_versa() -> None:
    private_pem, public_pem = keys.generate_rsa()
    with pytest.raises(KeyFormatError):
        keys.load_private(public_pem)
    with pytest.raises(KeyFormatError):
        keys.load_public(private_pem)


def test_unsupported_and_weak_keys_are_refused() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(KeyFormatError, match="unsupported private key type"):
        keys.load_private(_pem(ec_key))
    ec_public = ec_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(KeyFormatError, match="unsupported public key type"):
        keys.load_public(ec_public)
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(KeyFormatError, match="too small"):
        keys.load_private(_pem(weak))
    with pytest.raises(KeyFormatError, match="too small"):
        keys.load_public(keys.public_pem_of(weak))
    with pytest.raises(KeyFormatError, match="encrypted"):
        keys.load_private(_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048), b"pw"))


def test_typed_loaders_check_the_key_type() -> None:
    ed_pem, _ = keys.generate_ed25519()
    rsa_pem, rsa_public = keys.generate_rsa()
    with pytest.raises(KeyFormatError, match="expected an RSA public key"):
        keys.load_rsa_public(keys.public_pem_of(ed_pem))
    with pytest.raises(KeyFormatError, match="expected an Ed25519 private key"):
        keys.load_ed25519_private(rsa_pem)
    assert isinstance(keys.load_ed25519_private(ed_pem), ed25519.Ed25519PrivateKey)
    assert isinstance(keys.load_rsa_public(rsa_public), rsa.RSAPublicKey)


def test_generate_ed25519_gives_pem_and_multikey_that_match() -> None:
    private_pem, multikey = keys.generate_ed25519()
    assert private_pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert multikey.startswith("z6Mk") and len(multikey) == 48
    private = keys.load_ed25519_private(private_pem)
    public = keys.multikey_to_public(multikey)
    public.verify(private.sign(b"hello"), b"hello")
    assert keys.public_to_multikey(private.public_key()) == multikey


def test_multikey_encoding_is_0xed01_prefix_and_raw_bytes() -> None:
    raw = bytes(range(32))
    key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
    encoded = keys.public_to_multikey(key)
    assert base58.b58decode(encoded[1:]) == b"\xed\x01" + raw
    assert keys.multikey_to_public(encoded).public_bytes(serialization.Encoding.Raw,
                                                         serialization.PublicFormat.Raw) == raw


def test_w3c_test_vector_key_pair_matches() -> None:
    private = keys.private_multikey_to_private(W3C_PRIVATE)
    assert keys.public_to_multikey(private.public_key()) == W3C_PUBLIC


@pytest.mark.parametrize(("value", "reason"), [
    ("6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2", "start with 'z'"),
    ("u7QE", "start with 'z'"),
    ("z0OIl", "not valid base58btc"),
    ("z" + base58.b58encode(b"\xed\x01" + bytes(31)).decode(), "33 bytes, expected 34"),
    ("z" + base58.b58encode(b"\xed\x01" + bytes(33)).decode(), "35 bytes, expected 34"),
    ("z" + base58.b58encode(b"\xe7\x01" + bytes(32)).decode(), "multicodec prefix"),
    (W3C_PRIVATE, "multicodec prefix"),
    ("", "start with 'z'"),
])
def test_bad_multikeys_are_refused(value: str, reason: str) -> None:
    with pytest.raises(KeyFormatError, match=reason):
        keys.multikey_to_public(value)


def test_public_multikey_is_not_a_private_one() -> None:
    with pytest.raises(KeyFormatError, match="multicodec prefix"):
        keys.private_multikey_to_private(W3C_PUBLIC)
