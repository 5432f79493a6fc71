"""A background service of the embedded stack, tracked by a pid file in the state folder.

Each service runs as its own process group with its log and pid file in the state folder, so
a learner's terminal can close and the stack keeps running until `course down`. Subclasses
say how to prepare, launch and probe their server; starting, waiting, stopping and status
are the same for all of them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from ..settings import PROJECT_ROOT, Settings


class ServiceError(RuntimeError):
    """A service cannot do what was asked; the message says what to do about it."""


@dataclass
class ServiceStatus:
    name: str
    running: bool
    pid: int | None
    address: str
    version: str | None
    data_bytes: int
    detail: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def folder_size(path: Path) -> int:
    """Bytes in the files under `path` (0 when it does not exist or cannot be read)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def port_holder(port: int) -> str:
    """'pid 123 (name)' of the process listening on `port`, when this user may know it."""
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="inet"):
            listening = conn.status == psutil.CONN_LISTEN and conn.pid
            if listening and conn.laddr and conn.laddr.port == port:
                return f"pid {conn.pid} ({psutil.Process(conn.pid).name()})"
    return ""


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (so a server of ours can bind it)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class BackgroundService:
    """Start, wait for, stop and inspect one server process of the embedded stack."""

    name = ""
    product = ""  # what `version()` is the version of
    port_variable = ""  # the setting a learner changes when the port is taken
    stop_signal = signal.SIGTERM
    start_timeout = 60.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pid_file = settings.home / "run" / f"{self.name}.pid"
        self.log_file = settings.home / "logs" / f"{self.name}.log"
        self.data_dir = settings.home / self.name

    # -- what each service defines ----------------------------------------------------------

    @property
    def host(self) -> str:
        raise NotImplementedError

    @property
    def port(self) -> int:
        raise NotImplementedError

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        """The command line of the server process."""
        raise NotImplementedError

    def is_ours(self, cmdline: list[str]) -> bool:
        """Whether a live process with this command line is this service's server."""
        raise NotImplementedError

    def ready(self) -> bool:
        """True once the server answers."""
        raise NotImplementedError

    def version(self) -> str:
        """The server's version, asked over its protocol; raises ServiceError when it cannot."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Work before the first launch (folders, initdb); must be safe to repeat."""

    def after_start(self) -> None:
        """Work once the server answers (create a database); must be safe to repeat."""

    def popen_options(self) -> dict[str, Any]:
        """Extra subprocess.Popen arguments (another OS user, for instance)."""
        return {}

    def environment(self) -> dict[str, str]:
        return {**os.environ, **self.settings.client_env(), "PYTHONUNBUFFERED": "1"}

    def checks(self) -> None:
        """Refuse to start with a clear ServiceError when the settings cannot work."""

    # -- shared behaviour -------------------------------------------------------------------

    def pid(self) -> int | None:
        """The pid of our running server, or None; a stale pid file is removed."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):  # missing, unreadable, or a state folder gone wrong
            return None
        try:
            proc = psutil.Process(pid)
            alive = proc.status() != psutil.STATUS_ZOMBIE and self.is_ours(proc.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            alive = False
        if not alive:
            self.pid_file.unlink(missing_ok=True)
            return None
        return pid

    def start(self) -> str:
        """Start the server unless it runs; returns a one-line report."""
        if self.pid() is not None:
            return (f"{self.name}: already running at {self.address} "
                    f"({self.product} {self.version()})")
        self.checks()
        if not port_is_free(self.host, self.port):
            holder = port_holder(self.port)
            raise ServiceError(
                f"port {self.port} on {self.host} is already in use"
                f"{' by ' + holder if holder else ''}. Stop that program, or pick a free port "
                f"with {self.port_variable}=... in .env")
        self.ensure_writable_home()
        self.prepare()
        started = time.monotonic()
        print(f"{self.name}: starting ...", end="", flush=True)
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                self.command(), cwd=PROJECT_ROOT, env=self.environment(),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # survives the terminal that started it
                **self.popen_options())
        self.pid_file.write_text(f"{proc.pid}\n")
        next_dot = started + 2
        while not self.ready():
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                print(" failed")
                raise ServiceError(
                    f"the {self.name} server exited with code {proc.returncode}; last log "
                    f"lines ({self.log_file}):\n{self.tail()}")
            now = time.monotonic()
            if now - started > self.start_timeout:
                print(" timed out")
                self.stop()
                raise ServiceError(f"{self.name} did not answer within "
                                   f"{self.start_timeout:.0f} s; see {self.log_file}:\n"
                                   f"{self.tail()}")
            if now > next_dot:  # a sign of life on slow starts
                print(".", end="", flush=True)
                next_dot = now + 2
            time.sleep(0.1)
        self.after_start()
        print(f" ready in {time.monotonic() - started:.1f} s")
        return f"{self.name}: {self.product} {self.version()} at {self.address} (pid {proc.pid})"

    def ensure_writable_home(self) -> None:
        home = self.settings.home
        try:
            for folder in (self.pid_file.parent, self.log_file.parent):
                folder.mkdir(parents=True, exist_ok=True)
            probe = self.pid_file.parent / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise ServiceError(
                f"the state folder {home} is not writable ({exc.strerror}). Fix its "
                "permissions, or point COURSE_HOME in .env at a folder you can write") from None

    def stop(self, timeout: float = 30.0) -> str:
        """Stop the server and anything it started; SIGKILL what outlives `timeout`.

        A no-op when it is down.
        """
        pid = self.pid()
        if pid is None:
            return f"{self.name}: not running"
        proc = psutil.Process(pid)
        # Collect the children first: once the parent is gone they are orphans nobody stops.
        children = proc.children(recursive=True)
        proc.send_signal(self.stop_signal)
        gone, alive = psutil.wait_procs([proc], timeout=timeout)
        how = "stopped"
        leftovers = [c for c in children if c.is_running()] + alive
        for extra in leftovers:
            with contextlib.suppress(psutil.Error):
                extra.terminate()
        _, still = psutil.wait_procs(leftovers, timeout=10)
        for extra in still:
            with contextlib.suppress(psutil.Error):
                extra.kill()
                how = f"killed after {timeout:.0f} s" if extra.pid == pid else how
        self.pid_file.unlink(missing_ok=True)
        return f"{self.name}: {how}"

    def status(self) -> ServiceStatus:
        pid = self.pid()
        version, detail = None, ""
        if pid is not None:
            try:
                version = self.version()
            except ServiceError as exc:
                detail = str(exc)
        return ServiceStatus(self.name, pid is not None, pid, self.address, version,
                             folder_size(self.data_dir), detail)

    def purge(self) -> str:
        """Delete the service's data (the caller confirms first); the service must be down."""
        if self.pid() is not None:
            raise ServiceError(f"{self.name} is running; stop it before purging its data")
        if not self.data_dir.exists():
            return f"{self.name}: no data to delete"
        shutil.rmtree(self.data_dir)
        return f"{self.name}: deleted {self.data_dir}"

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log yet)"
