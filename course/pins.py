"""The pins in requirements.lock, and environment.yml rendered from them (`python -m course.pins`).

requirements.lock is the one source; environment.yml carries the same pins for conda/mamba
users, and a test keeps the two equal.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .settings import PROJECT_ROOT

LOCK = PROJECT_ROOT / "requirements.lock"
ENVIRONMENT_YML = PROJECT_ROOT / "environment.yml"


def read_pins(path: Path = LOCK) -> dict[str, str]:
    """Package name (lower case) to exact version, from a pip requirements file of `==` pins."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            if not sep:
                raise ValueError(f"{path.name}: {line!r} is not pinned with ==")
            pins[name.strip().lower()] = version.strip()
    return pins


def render_environment_yml(pins: dict[str, str]) -> str:
    """A conda environment with Python 3.11 and the lock's pins installed by pip."""
    lines = [
        "# Generated from requirements.lock by `python -m course.pins`; do not edit by hand.",
        "name: clickhouse-course",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        "  - python=3.11",
        "  - pip",
        "  - pip:",
        *(f"      - {name}=={version}" for name, version in sorted(pins.items())),
        "      - -e .",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    ENVIRONMENT_YML.write_text(render_environment_yml(read_pins()))
    print(f"wrote {ENVIRONMENT_YML.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
