"""The chDB engine behind the server: one data folder, many connections, named sessions.

chDB lets one process own a data folder; inside it, each connection has its own session
state (current database, SET, temporary tables), and connections run queries in parallel.
So a sessionless request gets a fresh connection (about 0.2 ms) that it throws away, and
each HTTP `session_id` keeps its own connection until it expires.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import chdb

from .errors import ClickHouseError, ErrorCatalog

log = logging.getLogger(__name__)

SERVER_CONFIG = """\
<clickhouse>
    <!-- The real server keeps these logs by default; clients and lessons read them. -->
    <query_log>
        <database>system</database>
        <table>query_log</table>
        <flush_interval_milliseconds>2000</flush_interval_milliseconds>
    </query_log>
    <part_log>
        <database>system</database>
        <table>part_log</table>
        <flush_interval_milliseconds>2000</flush_interval_milliseconds>
    </part_log>
</clickhouse>
"""


@dataclass
class Session:
    """A named HTTP session: one connection, used by one request at a time."""

    session_id: str
    connection: chdb.state.sqlitelike.Connection
    timeout: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_used: float = field(default_factory=time.monotonic)
    # URL settings and `database` of the last request, still applied (see RequestScope), and
    # the session's own values underneath them (None: the setting is at its default).
    url_settings: dict[str, str] = field(default_factory=dict)
    own_settings: dict[str, str | None] = field(default_factory=dict)
    url_database: str | None = None
    own_database: str | None = None


class Engine:
    """Owns the chDB data folder for the life of the server."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        config = data_dir.parent / "clickhouse-server.xml"
        config.write_text(SERVER_CONFIG)
        self._dsn = f"{data_dir}?config-file={config}"
        # This connection keeps the engine up between requests; it runs no user queries.
        self._anchor = chdb.connect(self._dsn)
        row = self._anchor.query("SELECT version(), timezone()", "TSV").bytes().decode()
        self.version, self.timezone = row.strip().split("\t")
        names = self._anchor.query(
            "SELECT DISTINCT name, code FROM system.errors "
            "SETTINGS system_events_show_zero_values = 1", "TSV").bytes().decode()
        codes = {name: int(code) for name, code in (ln.split("\t") for ln in names.splitlines())}
        self.errors = ErrorCatalog(codes, self.version)
        self._sessions: dict[str, Session] = {}
        self._sessions_lock = threading.Lock()

    def connect(self) -> chdb.state.sqlitelike.Connection:
        """A new connection with its own session state."""
        return chdb.connect(self._dsn)

    def session(self, session_id: str, timeout: float, must_exist: bool) -> Session:
        """The session named `session_id`, locked for the caller; release with `release()`.

        As in ClickHouse, a session that is busy with another query is an error at once
        (SESSION_IS_LOCKED), not a wait.
        """
        with self._sessions_lock:
            sess = self._sessions.get(session_id)
            if sess is None:
                if must_exist:
                    raise self.errors.error(
                        "SESSION_NOT_FOUND", f"Session {session_id} not found")
                sess = Session(session_id, self.connect(), timeout)
                self._sessions[session_id] = sess
            if not sess.lock.acquire(blocking=False):
                raise self.errors.error(
                    "SESSION_IS_LOCKED", f"Session {session_id} is locked by a concurrent client")
            sess.timeout = timeout
            return sess

    def check_read_only(self, query: str, params: dict[str, str]) -> None:
        """Raise the engine's own error for `query` under readonly=1 (a syntax error first).

        It runs on a throwaway connection where readonly forbids any change, so nothing
        happens; a statement that gets through is left to the caller to refuse.
        """
        conn = self.connect()
        try:
            conn.query("SET readonly = 1")
            conn.query(query, "Null", params=params)
        except Exception as exc:
            err = check(self, exc)
            if err.name != "READONLY":
                raise err from None
        finally:
            conn.close()

    def release(self, sess: Session) -> None:
        sess.last_used = time.monotonic()
        sess.lock.release()

    def expire_sessions(self) -> int:
        """Close sessions idle for longer than their timeout; returns how many closed."""
        now = time.monotonic()
        expired = []
        with self._sessions_lock:
            for sid, sess in list(self._sessions.items()):
                if now - sess.last_used > sess.timeout and sess.lock.acquire(blocking=False):
                    del self._sessions[sid]
                    expired.append(sess)
        for sess in expired:
            sess.connection.close()
            sess.lock.release()
        return len(expired)

    def close(self) -> None:
        """Close every session and the engine; data is already on disk."""
        with self._sessions_lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for sess in sessions:
            try:
                sess.connection.close()
            except Exception:  # closing at shutdown must not stop the others closing
                log.exception("closing session %s", sess.session_id)
        self._anchor.close()


def check(engine: Engine, exc: BaseException) -> ClickHouseError:
    """Shorthand used by the handler: any engine exception as a ClickHouseError."""
    if isinstance(exc, ClickHouseError):
        return exc
    return engine.errors.from_engine(exc)
