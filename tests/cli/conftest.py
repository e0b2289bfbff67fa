"""Fixtures of the command-line tests: a fresh instance (config and database) on SQLite, or on each
database the run covers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .test_cli import BACKENDS, Instance


@pytest.fixture
def sqlite_instance(tmp_path: Path) -> Instance:
    return Instance(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'fresh' / 'voisinage.db'}")


@pytest.fixture(params=BACKENDS)
def instance(request: Any, tmp_path: Path) -> Instance:
    if request.param == "sqlite":
        return Instance(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'fresh' / 'voisinage.db'}")
    return Instance(tmp_path, request.getfixturevalue("databases").postgresql())
