"""`voisinage backup FILE` while the server runs, then a new instance restored from it reads the same
timelines (SQLite: the file; PostgreSQL: pg_restore into a new database)."""

from __future__ import annotations

import glob
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from ..e2e.test_resident_day import _codes, register
from ..rig.process import ServeProcess, cli, free_port, write_config


def _home_ids(server: ServeProcess, token: str) -> list[str]:
    answer = requests.get(f"{server.url}/api/v1/timelines/home", params={"limit": 40},
                          headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return [s["id"] for s in answer.json()]


def _pg_restore() -> str:
    found = shutil.which("pg_restore") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_restore"),
                                                           reverse=True)), None)
    assert found, "pg_restore not found"
    return found


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_backup_while_serving_restores_the_same_timelines(engine: str, databases: Any, tmp_path: Path) -> None:
    import os

    if engine not in os.environ.get("VOISINAGE_TEST_DATABASES", "sqlite,postgresql"):
        pytest.skip(f"{engine} not selected")
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'live.db'}" if engine == "sqlite" else databases.postgresql()
    live_dir = tmp_path / "live"
    live_dir.mkdir()
    port = free_port()
    config = write_config(live_dir, db_url, port)
    cli(config, "village", "add", "embourg", "--name", "Embourg")
    codes = _codes(config, "embourg")
    server = ServeProcess(config, port).start()
    try:
        anna = register(server, codes[0], "anna", "Anna Lambert")
        for i in range(12):
            anna.status_post(f"Annonce {i} #annonce")
        before = _home_ids(server, anna.access_token)
        backup_file = tmp_path / ("copy.db" if engine == "sqlite" else "copy.dump")
        out = cli(config, "backup", str(backup_file))  # while the server is running
        assert "backup written" in out and backup_file.stat().st_size > 0
    finally:
        assert server.stop() == 0

    if engine == "sqlite":
        restored_url = f"sqlite+aiosqlite:///{backup_file}"
    else:
        restored_url = databases.postgresql()
        target = restored_url.replace("postgresql+asyncpg", "postgresql")
        # the fresh test database is migrated already: restore over it, replacing its objects
        result = subprocess.run([_pg_restore(), "--clean", "--if-exists", "--no-owner", "-d", target,
                                 str(backup_file)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
    restored_dir = tmp_path / "restored"
    restored_dir.mkdir()
    port2 = free_port()
    config2 = write_config(restored_dir, restored_url, port)  # same domain: the same instance, moved
    config2.write_text(config2.read_text().replace(f"port = {port}", f"port = {port2}"))
    restored = ServeProcess(config2, port2)
    restored.url = f"http://127.0.0.1:{port2}"
    restored.start()
    try:
        assert _home_ids(restored, anna.access_token) == before
    finally:
        assert restored.stop() == 0


def test_backup_errors_are_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", free_port())
    result = subprocess.run([str(Path(__import__("sys").executable).parent / "voisinage"), "--config", str(config),
                             "backup", str(tmp_path / "missing-folder" / "b.db")], capture_output=True, text=True)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "missing-folder").exists()
