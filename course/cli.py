"""The `course` command: start, stop and inspect the stack, and run the smoke job."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .settings import Settings, SettingsError, load_settings
from .stack import BackgroundService, EmbeddedClickHouse, EmbeddedPostgres, ServiceError
from .stack.airflow import AirflowStandalone
from .stack.docker import DockerStack, engine_answers

EMBEDDED: dict[str, type[BackgroundService]] = {
    "clickhouse": EmbeddedClickHouse,
    "postgres": EmbeddedPostgres,
    "airflow": AirflowStandalone,
}
# Airflow is opt-in: it costs about 1 GB of RAM and only the orchestration lessons need it.
CORE_SERVICES = ["clickhouse", "postgres"]


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def resolve_mode(args: argparse.Namespace | None, settings: Settings) -> str:
    """`--mode`, else COURSE_MODE; `auto` is docker when an engine answers, else embedded."""
    mode = getattr(args, "mode", None) or settings.mode
    if mode == "auto":
        return "docker" if engine_answers(timeout=3) else "embedded"
    return mode


def service_names(names: list[str], mode: str = "embedded") -> list[str]:
    """The services named (default: the core ones); JupyterLab is a service in docker mode
    only, since embedded mode runs the venv's own `jupyter lab`."""
    known = [*EMBEDDED, "jupyter"] if mode == "docker" else list(EMBEDDED)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SettingsError(f"unknown service {', '.join(unknown)}; services: "
                            + ", ".join(known))
    return names or CORE_SERVICES


def embedded(names: list[str], settings: Settings) -> list[BackgroundService]:
    return [EMBEDDED[n](settings) for n in service_names(names)]


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    started = time.monotonic()
    if resolve_mode(args, settings) == "docker":
        for line in DockerStack(settings).up(service_names(args.services, "docker")):
            print(line)
    else:
        for service in embedded(args.services, settings):
            print(service.start())
    print(f"up in {time.monotonic() - started:.1f} s; `course status` shows what runs where")
    return 0


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    mode = resolve_mode(args, settings)
    names = service_names(args.services, mode) if args.services else list(EMBEDDED)
    if args.purge and not args.yes:
        try:
            answer = input(f"Delete the data of {', '.join(names)} in {settings.home}? [y/N] ")
        except EOFError:  # no terminal to answer from
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted; add --yes to delete without asking")
            return 1
    if mode == "docker":
        for line in DockerStack(settings).down(names, purge=args.purge):
            print(line)
        return 0
    services = embedded(names, settings)
    for service in reversed(services):
        print(service.stop())
    if args.purge:
        for service in services:
            print(service.purge())
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    mode = resolve_mode(args, settings)
    names = service_names(args.services, mode) if args.services else list(EMBEDDED)
    if mode == "docker":
        statuses = DockerStack(settings).status(names)
    else:
        statuses = [s.status() for s in embedded(names, settings)]
    if args.json:
        print(json.dumps({"mode": mode, "home": str(settings.home),
                          "services": [s.as_dict() for s in statuses]}, indent=2))
        return 0
    print(f"mode: {mode}    state folder: {settings.home}")
    print(f"{'service':<12}{'state':<8}{'address':<28}{'version':<12}{'data':>10}")
    for s in statuses:
        state = "up" if s.running else "down"
        print(f"{s.name:<12}{state:<8}{s.address:<28}{s.version or '-':<12}"
              f"{human_bytes(s.data_bytes):>10}")
        if s.detail:
            print(f"  {s.detail}")
    return 0


def cmd_logs(args: argparse.Namespace, settings: Settings) -> int:
    mode = resolve_mode(args, settings)
    (name,) = service_names([args.service], mode)
    if mode == "docker":
        return DockerStack(settings).logs(name, args.lines, args.follow)
    service = EMBEDDED[name](settings)
    print(service.tail(args.lines))
    if args.follow:
        with open(service.log_file, errors="replace") as log:
            log.seek(0, 2)
            try:
                while True:
                    line = log.readline()
                    if line:
                        print(line, end="", flush=True)
                    else:
                        time.sleep(0.3)
            except KeyboardInterrupt:
                return 0
    return 0


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from .doctor import run_doctor

    return run_doctor(settings)


def cmd_smoke(args: argparse.Namespace, settings: Settings) -> int:
    from .smoke import run_smoke

    return run_smoke(settings, rows=args.rows)


def cmd_load(args: argparse.Namespace, settings: Settings) -> int:
    from .loaders.commands import run_load

    return run_load(settings, args.data)


def cmd_reset(args: argparse.Namespace, settings: Settings) -> int:
    from .loaders.commands import run_reset

    return run_reset(settings, yes=args.yes)


def cmd_data_generate(args: argparse.Namespace, settings: Settings) -> int:
    from .datagen import run_generate

    return run_generate(args.orders, args.seed, args.out)


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from .exercises import EXERCISES
    from .exercises.runner import check_all, summary_table

    if args.list:
        name_width = max(len(e.name) for e in EXERCISES)
        kind_width = max(len(e.kind) for e in EXERCISES)
        for exercise in EXERCISES:
            print(f"{exercise.name:<{name_width}}  {exercise.kind:<{kind_width}}  "
                  f"{exercise.title} (exercises/{exercise.file})")
        return 0
    if not args.exercises and not args.all:
        print("error: name an exercise (`course check 01`), or use --all or --list",
              file=sys.stderr)
        return 2
    try:
        results = check_all(settings, names=args.exercises, solution=args.solutions,
                            progress=args.all or len(args.exercises) > 1)
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    if len(results) == 1:
        print(results[0])
    else:
        for result in results:
            if not result.passed:
                print(f"\n{result}")
        print("\n" + summary_table(results))
    return 0 if all(r.passed for r in results) else 1


def start_core_services(args: argparse.Namespace | None, settings: Settings) -> None:
    """Start ClickHouse and PostgreSQL unless they run already (`run`, `lab`, notebooks)."""
    if resolve_mode(args, settings) == "docker":
        for line in DockerStack(settings).up(CORE_SERVICES):
            print(line)
        return
    for service in embedded([], settings):
        if not service.status().running:
            print(service.start())


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from .notebooks import BUILD_DIR, NotebookNotFound, run_all, select, summary

    try:
        notebooks = select(args.notebooks)
    except NotebookNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not notebooks:
        print("error: no notebooks found in notebooks/", file=sys.stderr)
        return 2
    start_core_services(args, settings)
    out = args.out or BUILD_DIR
    print(f"running {len(notebooks)} notebook(s) into {out}")
    runs = run_all(notebooks, out, keep_going=args.keep_going, save=args.save_outputs)
    print("\n" + summary(runs, len(notebooks)))
    return 0 if len(runs) == len(notebooks) and all(r.passed for r in runs) else 1


def cmd_lab(args: argparse.Namespace, settings: Settings) -> int:
    import subprocess

    from .notebooks import NOTEBOOKS_DIR
    from .settings import PROJECT_ROOT

    start_core_services(args, settings)
    first = next(iter(sorted(NOTEBOOKS_DIR.glob("00_*.ipynb"))), None)
    command = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={PROJECT_ROOT}"]
    if first is not None:
        command.append(str(first.relative_to(PROJECT_ROOT)))
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Containers and CI machines often run as root; Jupyter refuses that unless told.
        command.append("--allow-root")
    # argparse.REMAINDER keeps the `--` that separates the course's options from Jupyter's.
    extra = args.jupyter_args
    command += extra[1:] if extra[:1] == ["--"] else extra
    print("starting JupyterLab (Ctrl+C stops it; the stack keeps running until `course down`)")
    try:
        return subprocess.run(command, cwd=PROJECT_ROOT, check=False).returncode
    except KeyboardInterrupt:
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="course", description="Run the course's analytics stack (settings: .env).")
    sub = parser.add_subparsers(dest="command", required=True)
    services_help = f"{', '.join(EMBEDDED)} (default: {' and '.join(CORE_SERVICES)})"

    def add_mode(p: argparse.ArgumentParser) -> None:
        p.add_argument("--mode", choices=["embedded", "docker", "auto"],
                       help="where the stack runs (default: COURSE_MODE, else auto)")

    up = sub.add_parser("up", help="start services")
    up.add_argument("services", nargs="*", metavar="SERVICE", help=services_help)
    add_mode(up)
    up.set_defaults(func=cmd_up)

    down = sub.add_parser("down", help="stop services (default: all)")
    down.add_argument("services", nargs="*", metavar="SERVICE")
    down.add_argument("--purge", action="store_true", help="also delete their data")
    down.add_argument("--yes", action="store_true", help="do not ask before --purge")
    add_mode(down)
    down.set_defaults(func=cmd_down)

    status = sub.add_parser("status", help="what runs where, its version and data size")
    status.add_argument("services", nargs="*", metavar="SERVICE")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    add_mode(status)
    status.set_defaults(func=cmd_status)

    logs = sub.add_parser("logs", help="the last lines of a service's log")
    logs.add_argument("service", metavar="SERVICE")
    logs.add_argument("-n", "--lines", type=int, default=50)
    logs.add_argument("-f", "--follow", action="store_true")
    add_mode(logs)
    logs.set_defaults(func=cmd_logs)

    doctor = sub.add_parser("doctor", help="check this machine for the stack, with fixes")
    doctor.set_defaults(func=cmd_doctor)

    smoke = sub.add_parser("smoke", help="create a table, load rows, query them back")
    smoke.add_argument("--rows", type=int, default=100_000)
    smoke.set_defaults(func=cmd_smoke)

    load = sub.add_parser("load", help="check and load a data set (default: the sample in data/)")
    load.add_argument("--data", type=Path, metavar="DIR", help="folder of the data set's CSV files")
    load.set_defaults(func=cmd_load)

    reset = sub.add_parser("reset", help="drop the course's databases and reload the sample data")
    reset.add_argument("--yes", action="store_true", help="do not ask first")
    reset.set_defaults(func=cmd_reset)

    run = sub.add_parser("run", help="execute the lesson notebooks in order (starts the stack)")
    run.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                     help="lesson numbers or notebook names, like 03 or 03_dbt_staging "
                     "(default: all)")
    run.add_argument("--out", type=Path, default=None, metavar="DIR",
                     help="where the executed notebooks go (default: build/notebooks)")
    run.add_argument("--keep-going", action="store_true",
                     help="run the remaining notebooks after a failure")
    run.add_argument("--save-outputs", action="store_true",
                     help="copy the outputs of passing notebooks back into notebooks/")
    add_mode(run)
    run.set_defaults(func=cmd_run)

    lab = sub.add_parser("lab", help="start the stack and JupyterLab on the lessons")
    lab.add_argument("jupyter_args", nargs=argparse.REMAINDER, metavar="-- JUPYTER_ARGS",
                     help="passed on to `jupyter lab` (e.g. -- --port 8899 --no-browser)")
    add_mode(lab)
    lab.set_defaults(func=cmd_lab)

    check = sub.add_parser("check", help="check exercises against the stack (pass or a hint)")
    check.add_argument("exercises", nargs="*", metavar="EXERCISE",
                       help="an exercise's name or lesson number, like 01 or 01_sorting_key")
    check.add_argument("--all", action="store_true", help="check every exercise, with a table")
    check.add_argument("--list", action="store_true", help="list the exercises and their files")
    check.add_argument("--solutions", action="store_true",
                       help="check the reference solutions in exercises/solutions/ instead")
    check.set_defaults(func=cmd_check)

    data = sub.add_parser("data", help="data sets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    generate = data_sub.add_parser("generate", help="write a synthetic data set of any size")
    generate.add_argument("--orders", type=int, required=True, metavar="N")
    generate.add_argument("--seed", type=int, default=0, help="same seed, same files (default 0)")
    generate.add_argument("--out", type=Path, required=True, metavar="DIR")
    generate.set_defaults(func=cmd_data_generate)
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
