"""Consistent backups while the server runs: SQLite's online backup API, `pg_dump` for PostgreSQL.

Restoring: a SQLite backup is a database file (point `[database] url` at it); a PostgreSQL backup is a
custom-format dump (`pg_restore --no-owner -d NEWDB FILE`). Uploaded media live under `[media] path`
and are copied with any file tool (they never change once written).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(Exception):
    """A backup that could not be made, told in one line."""


def backup_database(url: str, target: Path) -> None:
    """Write a consistent copy of the database at `url` to `target` (replaced atomically)."""
    parsed = make_url(url)
    target = target.expanduser().resolve()
    if not target.parent.is_dir():
        raise BackupError(f"folder {target.parent} does not exist")
    partial = target.with_name(target.name + ".partial")
    try:
        if parsed.get_backend_name() == "sqlite":
            _backup_sqlite(parsed.database or "", partial)
        else:
            _backup_postgresql(parsed, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _backup_sqlite(database: str, partial: Path) -> None:
    source_path = Path(database).expanduser()
    if not source_path.exists():
        raise BackupError(f"database file {source_path} does not exist")
    # The online backup API copies a consistent snapshot page by page, even while the server writes.
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=30)
    dest = sqlite3.connect(partial)
    try:
        source.backup(dest, pages=1024)
    except sqlite3.Error as exc:
        raise BackupError(f"SQLite backup failed: {exc}") from None
    finally:
        dest.close()
        source.close()


def _backup_postgresql(parsed: object, partial: Path) -> None:
    pg_dump = shutil.which("pg_dump") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"),
                                                          reverse=True)), None)
    if pg_dump is None:
        raise BackupError("pg_dump not found (install the PostgreSQL client programs)")
    url = parsed.set(drivername="postgresql")  # type: ignore[attr-defined]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
        url = url.set(password=None)
    result = subprocess.run(
        [str(pg_dump), "--format=custom", "--no-owner", "--file", str(partial),
         url.render_as_string(hide_password=False)],
        capture_output=True, text=True, env=env, timeout=3600)
    if result.returncode != 0:
        message = (result.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise BackupError(f"pg_dump failed: {message}")
