"""A real `voisinage serve` process on a loopback port, for tests about the wire."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from .pg import free_port

VOISINAGE = str(Path(sys.executable).parent / "voisinage")


def write_config(folder: Path, db_url: str, port: int, **extra: str) -> Path:
    config = folder / "voisinage.toml"
    lines = [
        "[instance]", f'domain = "127.0.0.1:{port}"', 'scheme = "http"', 'name = "Commune e2e"',
        "[server]", 'host = "127.0.0.1"', f"port = {port}",
        "[database]", f'url = "{db_url}"',
        "[media]", f'path = "{folder / "media"}"',
        "[federation]", "allow_private_addresses = true",
    ]
    for key, value in extra.items():
        lines.append(f"{key} = {value}")
    config.write_text("\n".join(lines) + "\n")
    return config


def cli(config: Path, *args: str) -> str:
    result = subprocess.run([VOISINAGE, "--config", str(config), *args], capture_output=True, text=True,
                            timeout=120)
    if result.returncode != 0:
        raise AssertionError(f"voisinage {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


class ServeProcess:
    def __init__(self, config: Path, port: int) -> None:
        self.config = config
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> ServeProcess:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.log = open(self.config.parent / "serve.log", "wb")
        self.proc = subprocess.Popen([VOISINAGE, "--config", str(self.config), "serve"], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited: {(self.config.parent / 'serve.log').read_text()}")
            try:
                requests.get(f"{self.url}/api/v1/instance", timeout=1)
                return self
            except requests.RequestException:
                time.sleep(0.1)
        raise AssertionError("serve did not start")

    def stop(self) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.log.close()
        return code


__all__ = ["ServeProcess", "cli", "free_port", "write_config"]
