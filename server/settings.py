"""Settings: one frozen object built from the TOML config and VOISINAGE_* environment variables.

The defaults below are exactly those of `config.example.toml` (a test checks it). Code never reads the
environment itself: it receives a `Settings` (through the app's AppKey, or as an argument).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """A problem with the configuration, told in one line that names the key."""


@dataclass(frozen=True)
class InstanceSettings:
    domain: str = "localhost:8080"
    name: str = "Voisinage"
    scheme: str = "https"
    languages: tuple[str, ...] = ("fr", "nl", "de", "en")
    contact_email: str = ""


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    trusted_proxies: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = "sqlite+aiosqlite:///voisinage.db"


@dataclass(frozen=True)
class MediaSettings:
    path: str = "media"


@dataclass(frozen=True)
class FederationSettings:
    allow_private_addresses: bool = False


@dataclass(frozen=True)
class RegistrationSettings:
    accounts_per_household: int = 4


@dataclass(frozen=True)
class RatelimitSettings:
    api_per_5min: int = 300
    failed_codes_per_hour: int = 10
    logins_per_5min: int = 25


@dataclass(frozen=True)
class Settings:
    instance: InstanceSettings = field(default_factory=InstanceSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    media: MediaSettings = field(default_factory=MediaSettings)
    federation: FederationSettings = field(default_factory=FederationSettings)
    registration: RegistrationSettings = field(default_factory=RegistrationSettings)
    ratelimit: RatelimitSettings = field(default_factory=RatelimitSettings)
    # Not in the config file: tests turn the in-process workers off and drain queues themselves.
    run_workers: bool = True

    @property
    def base_url(self) -> str:
        return f"{self.instance.scheme}://{self.instance.domain}"

    def replace(self, **sections: Any) -> Settings:
        """A copy with some keys changed: `settings.replace(instance={"domain": "a.test"})`."""
        changes: dict[str, Any] = {}
        for name, value in sections.items():
            current = getattr(self, name)
            if isinstance(value, dict):
                changes[name] = _build_section(name, type(current), {**_asdict(current), **value})
            else:
                changes[name] = value
        return dataclasses.replace(self, **changes)


_SECTIONS = {f.name: f.type for f in dataclasses.fields(Settings) if f.name != "run_workers"}


def _asdict(section: Any) -> dict[str, Any]:
    return {f.name: getattr(section, f.name) for f in dataclasses.fields(section)}


def _section_class(name: str) -> type:
    return {
        "instance": InstanceSettings,
        "server": ServerSettings,
        "database": DatabaseSettings,
        "media": MediaSettings,
        "federation": FederationSettings,
        "registration": RegistrationSettings,
        "ratelimit": RatelimitSettings,
    }[name]


def _coerce(where: str, default: Any, value: Any) -> Any:
    """Convert a TOML or environment value to the type of the default, or raise ConfigError."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        raise ConfigError(f"{where} must be true or false, not {value!r}")
    if isinstance(default, int):
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a whole number, not {value!r}")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a whole number, not {value!r}") from None
        if number < 0:
            raise ConfigError(f"{where} must not be negative")
        return number
    if isinstance(default, tuple):
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of strings")
        return tuple(value)
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, not {value!r}")
    return value


def _build_section(name: str, cls: type, values: Mapping[str, Any]) -> Any:
    defaults = cls()
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown config key [{name}] {key}")
        kwargs[key] = _coerce(f"[{name}] {key}", getattr(defaults, key), value)
    section = cls(**kwargs)
    _validate(name, section)
    return section


def _validate(name: str, section: Any) -> None:
    if name == "instance":
        if section.scheme not in ("http", "https"):
            raise ConfigError('[instance] scheme must be "http" or "https"')
        domain = section.domain
        if not domain or "/" in domain or " " in domain or domain != domain.lower():
            raise ConfigError(f"[instance] domain must be a lower-case host[:port], not {domain!r}")
        unknown = set(section.languages) - {"fr", "nl", "de", "en"}
        if unknown or not section.languages:
            raise ConfigError("[instance] languages must be taken from fr, nl, de, en")
    if name == "server" and not 0 < section.port < 65536:
        raise ConfigError("[server] port must be between 1 and 65535")
    if name == "database" and not (
        section.url.startswith("sqlite+aiosqlite://") or section.url.startswith("postgresql+asyncpg://")
    ):
        raise ConfigError("[database] url must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
    if name == "registration" and section.accounts_per_household < 1:
        raise ConfigError("[registration] accounts_per_household must be at least 1")


def load_settings(path: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the TOML file at `path` (None: built-in defaults), then apply VOISINAGE_SECTION_KEY variables."""
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    sections: dict[str, Any] = {}
    for name in data:
        if name not in _SECTIONS:
            raise ConfigError(f"unknown config section [{name}]")
        if not isinstance(data[name], dict):
            raise ConfigError(f"[{name}] must be a section")
    for name in _SECTIONS:
        cls = _section_class(name)
        values = dict(data.get(name, {}))
        for f in dataclasses.fields(cls):
            env_name = f"VOISINAGE_{name.upper()}_{f.name.upper()}"
            if env_name in environ:
                values[f.name] = environ[env_name]
        sections[name] = _build_section(name, cls, values)
    return Settings(**sections)


def default_config_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """`$VOISINAGE_CONFIG`, else `./voisinage.toml` if it exists, else None (built-in defaults)."""
    environ = os.environ if environ is None else environ
    if environ.get("VOISINAGE_CONFIG"):
        return Path(environ["VOISINAGE_CONFIG"])
    local = Path("voisinage.toml")
    return local if local.exists() else None
