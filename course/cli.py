"""The `course` command: start, stop and inspect the stack, and run the smoke job."""

from __future__ import annotations

import argparse
import json
import sys

from .services import EmbeddedClickHouse, ServiceError
from .settings import Settings, SettingsError, load_settings

SERVICES = {"clickhouse": EmbeddedClickHouse}
CORE_SERVICES = ["clickhouse"]


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def pick(names: list[str], settings: Settings) -> list:
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise SettingsError(f"unknown service {', '.join(unknown)}; services: "
                            + ", ".join(SERVICES))
    return [SERVICES[n](settings) for n in (names or CORE_SERVICES)]


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    for service in pick(args.services, settings):
        print(service.start())
    return 0


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    for service in reversed(pick(args.services, settings)):
        print(service.stop())
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    statuses = [s.status() for s in pick(args.services, settings)]
    if args.json:
        print(json.dumps({"mode": "embedded", "home": str(settings.home),
                          "services": [s.as_dict() for s in statuses]}, indent=2))
        return 0
    print(f"mode: embedded    state folder: {settings.home}")
    print(f"{'service':<12}{'state':<8}{'address':<28}{'version':<12}{'data':>10}")
    for s in statuses:
        state = "up" if s.running else "down"
        print(f"{s.name:<12}{state:<8}{s.address:<28}{s.version or '-':<12}"
              f"{human_bytes(s.data_bytes):>10}")
        if s.detail:
            print(f"  ! {s.detail}")
    return 0


def cmd_smoke(args: argparse.Namespace, settings: Settings) -> int:
    from .smoke import run_smoke

    return run_smoke(settings, rows=args.rows)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="course", description="Run the course's analytics stack (settings: .env).")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start services (default: the core services)")
    up.add_argument("services", nargs="*", metavar="SERVICE", help=", ".join(SERVICES))
    up.set_defaults(func=cmd_up)

    down = sub.add_parser("down", help="stop services (default: the core services)")
    down.add_argument("services", nargs="*", metavar="SERVICE")
    down.set_defaults(func=cmd_down)

    status = sub.add_parser("status", help="what runs where, its version and data size")
    status.add_argument("services", nargs="*", metavar="SERVICE")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=cmd_status)

    smoke = sub.add_parser("smoke", help="create a table, load rows, query them back")
    smoke.add_argument("--rows", type=int, default=100_000)
    smoke.set_defaults(func=cmd_smoke)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args, load_settings())
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
