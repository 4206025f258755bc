"""Settings from the environment, with working local defaults (the embedded profile).

Every process (Rasa custom components, the action server, the console, the CLI) reads its
settings here, so one environment variable changes one behaviour everywhere.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _load_yaml(path: Path) -> Dict[str, Any]:
    if not path.exists():
        return {}
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one process."""

    var_dir: Path
    database_url: str
    bind_host: str
    rasa_port: int
    action_port: int
    console_port: int
    rasa_token: str
    timezone: str
    service: Dict[str, Any] = field(default_factory=dict)

    @property
    def rasa_url(self) -> str:
        """Base URL of the Rasa server as seen from this machine."""
        host = "127.0.0.1" if self.bind_host in ("0.0.0.0", "::") else self.bind_host
        return _env("RASA_URL", f"http://{host}:{self.rasa_port}")

    @property
    def api_token_file(self) -> Path:
        return self.var_dir / "api_token"

    def secret(self, env_name: str, file_name: str, length: int = 32) -> str:
        """A secret from the environment, else one kept under var/ (created once, mode 600)."""
        value = os.environ.get(env_name, "").strip()
        if value:
            return value
        path = self.var_dir / file_name
        if path.exists():
            return path.read_text(encoding="utf-8").strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(length)
        path.write_text(value + "\n", encoding="utf-8")
        path.chmod(0o600)
        return value

    def api_token(self) -> str:
        """The JSON API bearer token: INTAKE_API_TOKEN, else var/api_token."""
        return self.secret("INTAKE_API_TOKEN", self.api_token_file.name)

def load_settings() -> Settings:
    """Read settings from the environment (no caching: tests change the environment)."""
    var_dir = Path(_env("INTAKE_VAR_DIR", str(PROJECT_ROOT / "var")))
    default_db = f"sqlite:///{var_dir / 'intake.db'}"
    service_file = Path(_env("INTAKE_SERVICE_CONFIG", str(PROJECT_ROOT / "config" / "service.yml")))
    return Settings(
        var_dir=var_dir,
        database_url=_env("DATABASE_URL", default_db),
        bind_host=_env("BIND_HOST", "127.0.0.1"),
        rasa_port=int(_env("RASA_PORT", "5005")),
        action_port=int(_env("ACTION_PORT", "5055")),
        console_port=int(_env("CONSOLE_PORT", "8000")),
        rasa_token=os.environ.get("RASA_TOKEN", "").strip(),
        timezone=_env("INTAKE_TIMEZONE", "Asia/Shanghai"),
        service=_load_yaml(service_file),
    )


@lru_cache(maxsize=None)
def load_config_file(name: str) -> Dict[str, Any]:
    """A YAML file from config/ (areas, holidays, service) — read once per process."""
    return _load_yaml(PROJECT_ROOT / "config" / name)
