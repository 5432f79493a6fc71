"""`course doctor`: check this machine for the stack; every finding comes with its fix."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass

import psutil

from .settings import Settings
from .stack import EmbeddedClickHouse, EmbeddedPostgres
from .stack.airflow import AirflowStandalone
from .stack.docker import engine_answers
from .stack.postgres import system_user, unreachable_folder
from .stack.process import port_holder, port_is_free

GB = 1024**3
# Measured footprints (see the README): what each way of running needs free.
RAM_NEEDS = {
    "embedded (ClickHouse + PostgreSQL)": 1 * GB,
    "embedded with Airflow": 3 * GB,
    "docker (full stack)": 4 * GB,
}
DISK_NEED = 3 * GB  # the venv is separate; this is data for the 1M-order lessons


@dataclass
class Finding:
    ok: bool
    what: str
    fix: str = ""
    fatal: bool = True  # a failed non-fatal finding is a warning


def check_python() -> Finding:
    v = sys.version_info
    ok = v >= (3, 11, 5)  # the oldest Python every pinned package supports
    return Finding(ok, f"Python {v.major}.{v.minor}.{v.micro}",
                   "" if ok else "install Python 3.11.5 or newer and run `make setup` with it "
                   "(PYTHON=/path/to/python3.11 make setup)")


def check_ram() -> list[Finding]:
    free = psutil.virtual_memory().available
    findings = []
    for mode, need in RAM_NEEDS.items():
        ok = free >= need
        findings.append(Finding(
            ok, f"RAM for {mode}: {free / GB:.1f} GB free, {need / GB:.0f} GB needed",
            "" if ok else "close other programs, or use the embedded stack without Airflow",
            fatal=False))
    return findings


def check_ports(settings: Settings) -> list[Finding]:
    findings = []
    for service in (EmbeddedClickHouse(settings), EmbeddedPostgres(settings),
                    AirflowStandalone(settings)):
        if service.pid() is not None:
            findings.append(Finding(True, f"port {service.port}: used by the course's "
                                          f"{service.name}"))
        elif port_is_free(service.host, service.port):
            findings.append(Finding(True, f"port {service.port} ({service.name}) is free"))
        else:
            holder = port_holder(service.port)
            findings.append(Finding(
                False, f"port {service.port} ({service.name}) is in use"
                       f"{' by ' + holder if holder else ''}",
                f"stop that program, or set {service.port_variable}=<free port> in .env"))
    return findings


def check_docker() -> Finding:
    ok = engine_answers(timeout=3)
    return Finding(ok, "Docker engine answers" if ok else "no Docker engine answers",
                   "" if ok else "fine for the embedded stack (the default here); for docker "
                   "mode start Docker Desktop or the docker service", fatal=False)


def check_state_folder(settings: Settings) -> list[Finding]:
    home = settings.home
    existing = home
    while not existing.exists():
        existing = existing.parent
    findings = []
    try:
        home.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=home):
            pass
        findings.append(Finding(True, f"state folder {home} is writable"))
    except OSError as exc:
        findings.append(Finding(False, f"state folder {home} is not writable ({exc.strerror})",
                                "fix its permissions, or set COURSE_HOME in .env to a folder "
                                "you can write"))
        return findings
    free = shutil.disk_usage(home).free
    findings.append(Finding(free >= DISK_NEED, f"disk: {free / GB:.1f} GB free in {home}",
                            "" if free >= DISK_NEED else
                            f"free some space ({DISK_NEED / GB:.0f} GB recommended), or move "
                            "COURSE_HOME to a larger disk", fatal=False))
    if system_user() is not None:
        blocked = unreachable_folder(home / "postgres")
        findings.append(Finding(
            blocked is None,
            "PostgreSQL's system user can reach the state folder" if blocked is None else
            f"PostgreSQL's system user cannot pass through {blocked}",
            "" if blocked is None else f"`chmod o+x {blocked}`, or set COURSE_HOME to an open "
            "folder"))
    return findings


def run_doctor(settings: Settings) -> int:
    """Print every finding with its fix; 1 when something would stop the stack."""
    findings = [check_python(), *check_ram(), *check_ports(settings), check_docker(),
                *check_state_folder(settings)]
    for f in findings:
        mark = "ok  " if f.ok else ("FAIL" if f.fatal else "warn")
        print(f"[{mark}] {f.what}")
        if f.fix:
            print(f"       fix: {f.fix}")
    failed = [f for f in findings if not f.ok and f.fatal]
    print(f"{len(failed)} problem(s) found" if failed else
          "this machine can run the course" + (" (as root: PostgreSQL runs as its own "
                                               "system user)" if os.geteuid() == 0 else ""))
    return 1 if failed else 0
