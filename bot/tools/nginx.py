"""The reverse proxy in front of the assistant: render deploy/nginx/intake.conf.template and
run Debian's nginx unprivileged on a port of its own (tests, the production profile).

    python -m bot nginx render --listen 8080 --rasa 127.0.0.1:5005 --console 127.0.0.1:8000
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

import requests

from bot.core.settings import PROJECT_ROOT, get_settings

TEMPLATE = PROJECT_ROOT / "deploy" / "nginx" / "intake.conf.template"
NGINX = "/usr/sbin/nginx"


def render(listen: str, rasa: Sequence[str], console: str, prefix: Path) -> str:
    """The configuration text for these addresses, with its files under `prefix`."""
    settings = get_settings()
    body_kb = max(1, settings.service.limits.body_max_bytes // 1024)
    servers = "\n".join(f"        server {address};" for address in rasa)
    # INTAKE_RATE_LIMITS=off (load tests, evaluations) lifts the per-address limits here too.
    limits_off = settings.rate_limits.strip().lower() == "off"
    return TEMPLATE.read_text(encoding="utf-8").format(
        listen=listen,
        rasa_servers=servers,
        console=console,
        prefix=prefix,
        body_max_kb=body_kb,
        photo_max_kb=settings.service.media.max_bytes // 1024 + 64,
        webhook_rate="100000r/s" if limits_off else "20r/s",
        chat_rate="100000r/s" if limits_off else "5r/s",
    )


@dataclass
class Nginx:
    """nginx in the foreground (`daemon off`) with its files in `prefix`."""

    listen_port: int
    rasa: List[str]
    console: str
    prefix: Path
    process: Optional[subprocess.Popen] = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listen_port}"

    def start(self, timeout: float = 15) -> "Nginx":
        if not Path(NGINX).exists() and shutil.which("nginx") is None:
            raise RuntimeError("nginx is not installed: `make nginx` installs Debian's package")
        for part in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
            (self.prefix / part).mkdir(parents=True, exist_ok=True)
        config = self.prefix / "nginx.conf"
        config.write_text(
            render(f"127.0.0.1:{self.listen_port}", self.rasa, self.console, self.prefix),
            encoding="utf-8",
        )
        binary = NGINX if Path(NGINX).exists() else str(shutil.which("nginx"))
        subprocess.run(
            [binary, "-t", "-p", str(self.prefix), "-c", str(config)],
            check=True,
            capture_output=True,
        )
        self.process = subprocess.Popen(
            [binary, "-p", str(self.prefix), "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                requests.get(self.url + "/", timeout=1)
                return self
            except requests.RequestException:
                time.sleep(0.2)
        raise TimeoutError("nginx did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
