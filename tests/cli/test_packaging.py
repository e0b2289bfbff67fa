"""The wheel: everything the server needs at run time is inside, under `voisinage/` only.

One wheel is built (about 10 s) from a copy of the sources, so the checkout gets no build/ folder.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "server", "federation", "models")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(source, src / name)
    out = tmp / "dist"
    pip = Path(sys.executable).parent / "pip"
    result = subprocess.run([str(pip), "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    wheels = list(out.glob("voisinage-*.whl"))
    assert len(wheels) == 1
    return wheels[0]


@pytest.fixture(scope="module")
def wheel_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_wheel_holds_data_files(wheel_names: list[str]) -> None:
    names = set(wheel_names)
    for folder in ("voisinage/server/templates/", "voisinage/server/translations/", "voisinage/server/static/"):
        assert any(n.startswith(folder) for n in names), f"nothing under {folder}"
        expected = {f"{folder}{p.name}" for p in (ROOT / folder.removeprefix("voisinage/")).iterdir()
                    if p.is_file()}
        assert expected <= names, expected - names
    assert "voisinage/models/migrations/env.py" in names
    assert any(n.startswith("voisinage/models/migrations/versions/") and n.endswith(".py")
               and not n.endswith("__init__.py") for n in names)
    assert "voisinage/server/cli.py" in names
    assert "voisinage/server/services/letters.py" in names


def test_wheel_has_no_generic_top_level_package(wheel_names: list[str]) -> None:
    tops = {n.split("/", 1)[0] for n in wheel_names}
    assert tops == {"voisinage", "voisinage-0.1.0.dist-info"}, tops
    assert not any(n.startswith(("server/", "federation/", "models/")) for n in wheel_names)
    assert "voisinage/__init__.py" not in wheel_names  # a namespace package, no folder of its own


def test_wheel_declares_the_script(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        entry_points = archive.read("voisinage-0.1.0.dist-info/entry_points.txt").decode()
    assert "voisinage = voisinage.server.cli:main" in entry_points
