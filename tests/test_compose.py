"""docker-compose.yml publishes the web port (metrics, console) on loopback by default."""

from __future__ import annotations

import re
from pathlib import Path

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"
# Compose's `${NAME:-default}` and `${NAME}` interpolation.
VARIABLE = re.compile(r"\$\{(?P<name>[A-Z_][A-Z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def published_ports(environment: dict[str, str]) -> list[str]:
    """The `ports:` entries of the file, interpolated as compose would with `environment`."""
    entries: list[str] = []
    in_ports = False
    for line in COMPOSE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped == "ports:":
            in_ports = True
        elif in_ports and stripped.startswith("- "):
            raw = stripped[2:].strip().strip('"')
            entries.append(
                VARIABLE.sub(lambda m: environment.get(m["name"]) or m["default"] or "", raw)
            )
        elif in_ports and stripped and not stripped.startswith("#"):
            in_ports = False
    return entries


def test_the_web_port_is_published_on_loopback_unless_told_otherwise() -> None:
    assert published_ports({}) == ["127.0.0.1:8080:8080"]
    assert published_ports({"PARLEY_PUBLISH_ADDRESS": "0.0.0.0"}) == ["0.0.0.0:8080:8080"]
