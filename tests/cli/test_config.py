"""Settings: config.example.toml is the defaults, environment overrides, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from voisinage.server.settings import (
    ConfigError,
    Settings,
    default_config_path,
    load_settings,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "voisinage.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_is_exactly_the_defaults() -> None:
    assert load_settings(EXAMPLE, environ={}) == load_settings(None, environ={}) == Settings()


def test_example_config_names_every_key() -> None:
    import dataclasses
    import tomllib

    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    defaults = Settings()
    for section in dataclasses.fields(defaults):
        if section.name == "run_workers":
            continue
        keys = {f.name for f in dataclasses.fields(getattr(defaults, section.name))}
        assert set(data[section.name]) == keys, section.name


def test_file_values_are_read(tmp_path: Path) -> None:
    path = write(tmp_path, '[instance]\ndomain = "liege.example"\nscheme = "http"\n'
                           '[server]\nport = 9000\ntrusted_proxies = ["127.0.0.1", "::1"]\n')
    settings = load_settings(path, environ={})
    assert settings.instance.domain == "liege.example"
    assert settings.base_url == "http://liege.example"
    assert settings.server.port == 9000
    assert settings.server.trusted_proxies == ("127.0.0.1", "::1")
    assert settings.database == Settings().database  # untouched sections keep their defaults


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nport = 9000\n[database]\nurl = "sqlite+aiosqlite:///a.db"\n')
    settings = load_settings(path, environ={
        "VOISINAGE_SERVER_PORT": "9100",
        "VOISINAGE_DATABASE_URL": "postgresql+asyncpg://u:p@db/voisinage",
        "VOISINAGE_SERVER_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.1",
        "VOISINAGE_FEDERATION_ALLOW_PRIVATE_ADDRESSES": "true",
        "VOISINAGE_INSTANCE_LANGUAGES": "fr,de",
    })
    assert settings.server.port == 9100
    assert settings.database.url == "postgresql+asyncpg://u:p@db/voisinage"
    assert settings.server.trusted_proxies == ("127.0.0.1", "10.0.0.1")
    assert settings.federation.allow_private_addresses is True
    assert settings.instance.languages == ("fr", "de")


@pytest.mark.parametrize("text, words", [
    ("[server]\nfoo = 1\n", ["unknown config key", "foo"]),
    ("[nowhere]\n", ["unknown config section", "nowhere"]),
    ("server = 1\n", ["[server] must be a section"]),
    ("[server\n", ["not valid TOML"]),
    ("[server]\nport = 0\n", ["port"]),
    ("[server]\nport = \"eighty\"\n", ["port", "whole number"]),
    ("[instance]\nscheme = \"ftp\"\n", ["scheme"]),
    ("[instance]\ndomain = \"Big.Example/x\"\n", ["domain"]),
    ("[instance]\nlanguages = [\"fr\", \"it\"]\n", ["languages"]),
    ("[database]\nurl = \"postgresql://x/y\"\n", ["url"]),
    ("[registration]\naccounts_per_household = 0\n", ["accounts_per_household"]),
    ("[federation]\nallow_private_addresses = \"maybe\"\n", ["true or false"]),
    ("[ratelimit]\napi_per_5min = -1\n", ["negative"]),
])
def test_bad_values_raise_one_line(tmp_path: Path, text: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), environ={})
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_bad_environment_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"\[server\] port"):
        load_settings(None, environ={"VOISINAGE_SERVER_PORT": "x"})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_default_config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_config_path({}) is None
    (tmp_path / "voisinage.toml").write_text("", encoding="utf-8")
    assert default_config_path({}) == Path("voisinage.toml")
    assert default_config_path({"VOISINAGE_CONFIG": "/etc/voisinage.toml"}) == Path("/etc/voisinage.toml")


def test_replace_changes_one_key_and_validates() -> None:
    settings = Settings().replace(server={"port": 9000})
    assert settings.server.port == 9000 and settings.server.host == "127.0.0.1"
    with pytest.raises(ConfigError):
        Settings().replace(server={"port": 0})
