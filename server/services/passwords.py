"""Password hashing with argon2id (argon2-cffi's defaults, RFC 9106's low-memory profile)."""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def _hasher() -> Any:
    """argon2-cffi's hasher, imported at the first login or registration, not at start-up."""
    from argon2 import PasswordHasher

    return PasswordHasher()


@functools.cache
def _dummy() -> str:
    """Verifying against this keeps the time of a login with an unknown name equal to a wrong password
    (made at the first login, not at start-up: a hash takes half a second)."""
    return str(_hasher().hash("not a password of anyone"))


def hash_password(password: str) -> str:
    return str(_hasher().hash(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return bool(_hasher().verify(password_hash or _dummy(), password)) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False
