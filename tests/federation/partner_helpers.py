"""Helpers for FA's federation tests: remote actors of partner hosts, and signed requests from them.

The remote actor's row is inserted with its public key and keyId, so `actors.public_key_for` finds it
in the database without any fetch.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from voisinage.federation.keys import generate_rsa, load_private
from voisinage.federation.partners import add_partner
from voisinage.federation.signatures import sign_request
from voisinage.federation.vocab import AP_ACCEPT
from voisinage.models.actor import PERSON, Actor
from voisinage.models.db import write_session
from voisinage.models.follow import ACCEPTED, Follow
from voisinage.models.ids import new_id


@functools.cache
def rsa_pair(index: int = 0) -> tuple[str, str]:
    """A cached RSA key pair (generation is slow): (private PEM, public PEM)."""
    return generate_rsa()


@functools.cache
def loaded_key(pem: str) -> Any:
    """The loaded private key of a PEM: loading checks the key, which is slow, so once per key."""
    return load_private(pem)


@dataclass
class Remote:
    """A remote actor whose private key the test holds."""

    actor_id: int
    uri: str
    key_id: str
    private_pem: str
    host: str

    def headers(self, path: str, *, domain: str = "a.test", accept: str = AP_ACCEPT) -> dict[str, str]:
        """Signed GET headers for `path` on our instance (Host = domain)."""
        return sign_request("GET", f"https://{domain}{path}", {"Accept": accept}, b"", self.key_id,
                            loaded_key(self.private_pem))


async def add_remote(sessionmaker: Any, host: str = "b.test", username: str = "rowan", *, partner: bool = True,
                     kind: str = PERSON, path: str | None = None, key_index: int = 0,
                     scheme: str = "https") -> Remote:
    """Insert a remote actor on `host` (made a partner unless partner=False) with a known key."""
    private_pem, public_pem = rsa_pair(key_index)
    uri = f"{scheme}://{host}{path or '/users/' + username}"
    async with write_session(sessionmaker) as session:
        if partner:
            await add_partner(session, host)
        actor = Actor(id=new_id(), username=username, domain=host, kind=kind, uri=uri, inbox_uri=f"{uri}/inbox",
                      shared_inbox_uri=f"{scheme}://{host}/inbox", followers_uri=f"{uri}/followers",
                      key_id=f"{uri}#main-key", public_key_pem=public_pem, fields=[], note_source="")
        session.add(actor)
        await session.flush()
        actor_id = actor.id
    return Remote(actor_id, uri, f"{uri}#main-key", private_pem, host)


async def follow(sessionmaker: Any, follower_id: int, target_id: int, state: str = ACCEPTED) -> None:
    """A follow row, as if accepted over federation."""
    async with write_session(sessionmaker) as session:
        session.add(Follow(id=new_id(), follower_id=follower_id, target_id=target_id, state=state))
