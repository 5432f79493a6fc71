"""Background services of the embedded stack: start, stop and inspect them by pid file.

Each service runs as its own process with its log and pid file in the state folder, so a
learner's terminal can close and the stack keeps running until `course down`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from .settings import PROJECT_ROOT, Settings, is_loopback


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
    """Bytes in the files under `path` (0 when it does not exist)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (so a server of ours can bind it)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class EmbeddedClickHouse:
    """chDB served over the ClickHouse HTTP interface by `python -m course.embedded_clickhouse`."""

    name = "clickhouse"
    module = "course.embedded_clickhouse"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pid_file = settings.home / "run" / f"{self.name}.pid"
        self.log_file = settings.home / "logs" / f"{self.name}.log"
        self.data_dir = settings.home / "clickhouse"

    # -- process bookkeeping ----------------------------------------------------------------

    def pid(self) -> int | None:
        """The pid of our running server, or None; a stale pid file is removed."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            proc = psutil.Process(pid)
            alive = proc.status() != psutil.STATUS_ZOMBIE and self.module in " ".join(
                proc.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            alive = False
        if not alive:
            self.pid_file.unlink(missing_ok=True)
            return None
        return pid

    def request(self, sql: str, timeout: float = 5.0) -> str:
        """Run `sql` over HTTP with the configured credentials; raises ServiceError on failure."""
        s = self.settings
        req = urllib.request.Request(
            f"{s.clickhouse_url}/", data=sql.encode(), method="POST",
            headers={"Authorization": "Basic " + b64encode(
                f"{s.clickhouse_user}:{s.clickhouse_password}".encode()).decode()})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.read().decode()
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace").strip()
            if exc.code in (401, 403):
                raise ServiceError(
                    f"ClickHouse at {s.clickhouse_url} rejects the configured user or password "
                    f"({body.splitlines()[0] if body else exc.code}). It was started with other "
                    "settings: run `course down clickhouse` then `course up clickhouse`, or fix "
                    "CLICKHOUSE_USER / CLICKHOUSE_PASSWORD in .env") from None
            raise ServiceError(f"ClickHouse answered {exc.code}: {body}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ServiceError(f"ClickHouse at {s.clickhouse_url} does not answer: {exc}") from None

    def answers(self) -> bool:
        try:
            url = f"{self.settings.clickhouse_url}/ping"
            with urllib.request.urlopen(url, timeout=1) as resp:
                return resp.read().startswith(b"Ok.")
        except (urllib.error.URLError, OSError):
            return False

    # -- commands ---------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> str:
        """Start the server unless it runs; returns a one-line report."""
        s = self.settings
        if self.pid() is not None:
            version = self.request("SELECT version()").strip()
            return f"{self.name}: already running at {s.clickhouse_url} (ClickHouse {version})"
        if not is_loopback(s.clickhouse_host) and not s.clickhouse_password:
            raise ServiceError(
                f"refusing to serve ClickHouse on {s.clickhouse_host} without a password: set "
                "CLICKHOUSE_PASSWORD in .env, or CLICKHOUSE_HOST=127.0.0.1")
        if not port_is_free(s.clickhouse_host, s.clickhouse_port):
            raise ServiceError(
                f"port {s.clickhouse_port} on {s.clickhouse_host} is already in use by another "
                "program (a ClickHouse server of your own?). Stop it, or pick a free port with "
                "CLICKHOUSE_PORT=... in .env")
        for folder in (self.pid_file.parent, self.log_file.parent, self.data_dir):
            folder.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **s.client_env(), "PYTHONUNBUFFERED": "1"}
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", self.module], cwd=PROJECT_ROOT, env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)  # survives the terminal that started it
        self.pid_file.write_text(f"{proc.pid}\n")
        started = time.monotonic()
        print(f"{self.name}: starting (embedded chDB, data in {self.data_dir}) ...",
              end="", flush=True)
        while not self.answers():
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                print(" failed")
                raise ServiceError(
                    f"the ClickHouse server exited with code {proc.returncode}; last log lines "
                    f"({self.log_file}):\n{self.tail()}")
            if time.monotonic() - started > timeout:
                print(" timed out")
                self.stop()
                raise ServiceError(f"ClickHouse did not answer within {timeout:.0f} s; see "
                                   f"{self.log_file}:\n{self.tail()}")
            time.sleep(0.1)
        version = self.request("SELECT version()").strip()
        print(f" ready in {time.monotonic() - started:.1f} s")
        return f"{self.name}: ClickHouse {version} at {s.clickhouse_url} (pid {proc.pid})"

    def stop(self, timeout: float = 30.0) -> str:
        """Stop the server (SIGTERM, then SIGKILL after `timeout`); a no-op when it is down."""
        pid = self.pid()
        if pid is None:
            return f"{self.name}: not running"
        proc = psutil.Process(pid)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
            how = "stopped"
        except psutil.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            how = f"killed after {timeout:.0f} s"
        self.pid_file.unlink(missing_ok=True)
        return f"{self.name}: {how}"

    def status(self) -> ServiceStatus:
        pid = self.pid()
        version, detail = None, ""
        if pid is not None:
            try:
                version = self.request("SELECT version()", timeout=2).strip()
            except ServiceError as exc:
                detail = str(exc)
        return ServiceStatus(self.name, pid is not None, pid, self.settings.clickhouse_url,
                             version, folder_size(self.data_dir), detail)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log yet)"
