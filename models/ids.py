"""64-bit, time-ordered ids, unique across processes and machines that share one database.

Layout (as Mastodon's snowflakes, sortable as numbers): milliseconds since the Unix epoch in the high
bits, then 8 bits of node number, then an 8-bit sequence. Each process takes its node number from the
database (`id_nodes`, see `models.db.claim_node`): no two live processes hold the same node, so two
processes never mint the same id.
"""

from __future__ import annotations

import threading
import time

NODE_BITS = 8
_SEQ_BITS = 8
_LOW_BITS = NODE_BITS + _SEQ_BITS


class IdGenerator:
    """Mints ids for one process; thread-safe, never repeats even when the clock steps back."""

    def __init__(self, node: int = 0) -> None:
        self.node = node % (1 << NODE_BITS)
        self._last_ms = 0
        self._seq = 0
        self._lock = threading.Lock()

    def next_id(self) -> int:
        with self._lock:
            now = int(time.time() * 1000)
            if now > self._last_ms:
                self._last_ms, self._seq = now, 0
            else:
                self._seq += 1
                if self._seq >> _SEQ_BITS:
                    self._last_ms, self._seq = self._last_ms + 1, 0
            return (self._last_ms << _LOW_BITS) | (self.node << _SEQ_BITS) | self._seq


_generator = IdGenerator(0)


def set_node(node: int) -> None:
    """Called once a process knows its node number; later ids carry it."""
    global _generator
    last = _generator._last_ms
    _generator = IdGenerator(node)
    _generator._last_ms = last


def new_id() -> int:
    return _generator.next_id()


def id_at(timestamp: float, serial: int = 0) -> int:
    """An id for a moment in the past (seeding, imported objects): unique for distinct `serial`s."""
    ms = int(timestamp * 1000)
    return (ms << _LOW_BITS) | (_generator.node << _SEQ_BITS) | (serial & ((1 << _SEQ_BITS) - 1))
