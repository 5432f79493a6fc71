"""The ClickHouse HTTP interface over the chDB engine, as an ASGI app served by uvicorn.

The request forms follow ClickHouse's own HTTPHandler: the query in the `query` URL
parameter and/or the body, settings as URL parameters, `param_*` query parameters,
`session_id`, `database`, `default_format`, external data as multipart/form-data, INSERT
data streamed from the (possibly compressed) body. Responses carry the X-ClickHouse-*
headers clients read, and errors carry the real exception codes and HTTP statuses.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import logging
import secrets
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from . import sql
from .bodies import BodyError, decoded
from .engine import Engine, Session, check
from .errors import ClickHouseError

log = logging.getLogger(__name__)
T = TypeVar("T")

# URL parameters that steer the HTTP exchange rather than the query; everything else that is
# not `param_*` is a ClickHouse setting.
TRANSPORT_PARAMS = frozenset({
    "query", "database", "default_format", "user", "password", "quota_key", "query_id",
    "session_id", "session_timeout", "session_check", "compress", "decompress", "buffer_size",
    "wait_end_of_query", "stacktrace", "role", "client_protocol_version",
    "send_progress_in_http_headers", "http_headers_progress_interval_ms",
    "enable_http_compression", "http_zlib_compression_level", "http_response_buffer_size",
    "cancel_http_readonly_queries_on_client_close", "http_wait_end_of_query",
    "add_http_cors_header", "http_write_exception_in_output_format",
})
EXTERNAL_SUFFIXES = ("_structure", "_format", "_types", "_names")
INSERT_BATCH_BYTES = 1 << 20  # hand chDB about 1 MiB at a time; fewer thread hops, flat memory
MAX_HEAD_BYTES = 256 * 1024  # ClickHouse's default max_query_size
SPOOL_MEMORY_BYTES = 64 << 20  # a waited-for result moves from memory to a temp file past this
DEFAULT_SESSION_TIMEOUT = 60.0


def content_type(fmt: str) -> str:
    """The Content-Type the real server sends for an output format."""
    f = fmt.lower()
    if f.startswith("json"):
        return "application/json; charset=UTF-8"
    if f.startswith(("tabseparated", "tsv")):
        return "text/tab-separated-values; charset=UTF-8"
    if f.startswith("csv"):
        return "text/csv; charset=UTF-8; header=absent"
    if f.startswith(("pretty", "vertical", "markdown", "values", "xml", "template")):
        return "text/plain; charset=UTF-8"
    return "application/octet-stream"


@dataclass
class Exchange:
    """Everything one request decided before it runs: the statement and its context."""

    query_id: str
    kind: str = ""
    sql: bytes = b""
    fmt: str = "TabSeparated"
    settings: dict[str, str] = field(default_factory=dict)
    query_params: dict[str, str] = field(default_factory=dict)
    database: str | None = None
    external: list[tuple[str, str, str, bytes]] = field(default_factory=list)
    insert: sql.InsertSplit | None = None
    insert_data: AsyncIterator[bytes] | None = None
    wait_end: bool = False

    @property
    def returns_rows(self) -> bool:
        return self.insert is None and self.kind in sql.ROW_STATEMENTS


class ClickHouseHTTP:
    """The request handler; one instance per server process."""

    def __init__(self, engine: Engine, user: str, password: str, max_workers: int = 64) -> None:
        self.engine = engine
        self.user = user
        self.password = password
        self.pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="chdb")

    # -- plumbing ---------------------------------------------------------------------------

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking chDB call on the pool so the event loop keeps answering /ping."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def headers(self, query_id: str, fmt: str | None = None,
                summary: dict[str, int] | None = None) -> dict[str, str]:
        counts = {"read_rows": 0, "read_bytes": 0, "written_rows": 0, "written_bytes": 0,
                  "total_rows_to_read": 0, "result_rows": 0, "result_bytes": 0,
                  "elapsed_ns": 0, **(summary or {})}
        out = {
            "X-ClickHouse-Server-Display-Name": "course-embedded",
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": self.engine.timezone,
            "X-ClickHouse-Summary": json.dumps({k: str(v) for k, v in counts.items()},
                                               separators=(",", ":")),
        }
        if fmt is not None:
            out["X-ClickHouse-Format"] = fmt
            out["Content-Type"] = content_type(fmt)
        else:
            out["Content-Type"] = "text/plain; charset=UTF-8"
        return out

    def error_response(self, err: ClickHouseError, query_id: str) -> Response:
        headers = self.headers(query_id)
        headers["X-ClickHouse-Exception-Code"] = str(err.code)
        return Response(self.engine.errors.body(err), status_code=self.engine.errors.status(
            err.code), headers=headers)

    # -- entry points -----------------------------------------------------------------------

    async def ping(self, request: Request) -> Response:
        return PlainTextResponse("Ok.\n")

    async def query(self, request: Request) -> Response:
        query_id = request.query_params.get("query_id") or str(uuid.uuid4())
        # A bare `GET /` is the real server's static "Ok." handler: it asks for no credentials.
        if request.method in ("GET", "HEAD") and request.url.path == "/" and not request.url.query:
            return PlainTextResponse("Ok.\n")
        try:
            self.authenticate(request)
            if (request.method in ("GET", "HEAD") and "query" not in request.query_params
                    and request.url.path == "/"):
                return PlainTextResponse("Ok.\n")
            ex = await self.prepare(request, query_id)
            return await self.run(request, ex)
        except ClickHouseError as err:
            return self.error_response(err, query_id)
        except BodyError as err:
            return self.error_response(self.engine.errors.error(err.error_name, str(err)),
                                       query_id)
        except ClientDisconnect:
            log.info("client went away before its request body ended (query %s)", query_id)
            return Response(status_code=400)

    # -- steps ------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> None:
        h, p = request.headers, request.query_params
        # Header values arrive as latin-1 text; clients send UTF-8 bytes, as the server reads.
        user, password = (_utf8_header(h.get("x-clickhouse-user")),
                          _utf8_header(h.get("x-clickhouse-key")))
        auth = h.get("authorization", "")
        if user is None and auth.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                user, password = "", None
        if user is None:
            user, password = p.get("user"), p.get("password")
        user = user or "default"
        password = password or ""
        ok = hmac.compare_digest(user.encode(), self.user.encode()) & hmac.compare_digest(
            password.encode(), self.password.encode())
        if not ok:
            raise self.engine.errors.error(
                "AUTHENTICATION_FAILED",
                f"{user}: Authentication failed: password is incorrect, "
                "or there is no user with such name")

    async def prepare(self, request: Request, query_id: str) -> Exchange:
        params = dict(request.query_params.multi_items())
        ex = Exchange(query_id=query_id, fmt=params.get("default_format") or "TabSeparated")
        ex.wait_end = params.get("wait_end_of_query") in ("1", "true")
        body: AsyncIterator[bytes] | None = None
        ctype = request.headers.get("content-type", "")
        if request.method == "POST" and ctype.startswith("multipart/form-data"):
            await self.read_form(request, params, ex)
        elif request.method == "POST":
            body = decoded(request.stream(), request.headers.get("content-encoding"))
        query_text = params.get("query", "").encode()
        for name, value in params.items():
            if name.startswith("param_"):
                ex.query_params[name[6:]] = value
            elif name not in TRANSPORT_PARAMS and not self.is_external_meta(name, ex):
                ex.settings[name] = value
        ex.database = params.get("database") or None
        await self.read_statement(ex, query_text, body)
        if not ex.sql.strip() and ex.insert is None:
            raise self.engine.errors.error("SYNTAX_ERROR", "Empty query")
        if ex.insert is None and sql.has_several_statements(ex.sql):
            raise self.engine.errors.error(
                "SYNTAX_ERROR", "Syntax error (Multi-statements are not allowed): failed at "
                "position of the second statement")
        if request.method == "GET" and ex.kind not in sql.READ_ONLY_STATEMENTS:
            # The real server parses before it checks readonly: a typo is a SYNTAX_ERROR.
            await self.blocking(self.engine.check_read_only,
                                query_text.decode("utf-8", "replace"), ex.query_params)
            raise self.engine.errors.error(
                "READONLY", "Cannot execute query in readonly mode. For queries over HTTP, "
                "method GET implies readonly. You should use method POST for modifying queries")
        found = sql.output_format(ex.sql) if ex.insert is None else None
        if found:
            ex.fmt = found
        return ex

    @staticmethod
    def is_external_meta(name: str, ex: Exchange) -> bool:
        return any(name == t + s for t, *_ in ex.external for s in EXTERNAL_SUFFIXES)

    async def read_form(self, request: Request, params: dict[str, str], ex: Exchange) -> None:
        """multipart/form-data: files are external tables; plain fields act as URL params."""
        async with request.form(max_files=100, max_fields=1000) as form:
            files = []
            for name, value in form.multi_items():
                if isinstance(value, str):
                    params.setdefault(name, value)
                else:
                    files.append((name, await value.read()))
        for name, data in files:
            structure = params.get(f"{name}_structure")
            if structure is None and f"{name}_types" in params:
                types = params[f"{name}_types"].split(",")
                names = params.get(f"{name}_names", "").split(",")
                if len(names) != len(types):
                    names = [f"_{i + 1}" for i in range(len(types))]
                structure = ", ".join(f"{n} {t}" for n, t in zip(names, types, strict=True))
            if structure is None:
                raise self.engine.errors.error(
                    "BAD_ARGUMENTS", f"Neither structure nor types have not been provided "
                    f"for external table {name}. Use fields {name}_structure or {name}_types "
                    "to do so.")
            ex.external.append((name, structure, params.get(f"{name}_format", "TabSeparated"),
                                data))

    async def read_statement(self, ex: Exchange, query_text: bytes,
                             body: AsyncIterator[bytes] | None) -> None:
        """Join the URL query and the body; for an INSERT, stop where its data begins."""
        buf = query_text + b"\n" if query_text else b""
        exhausted = body is None
        while True:
            try:
                first = next(sql.tokens(buf, complete=exhausted), None)
                if first is None and not exhausted:
                    raise sql.IncompleteSQL
                ex.kind = "(" if first and first.text == b"(" else (first.upper if first else "")
                split = (sql.split_insert(buf, complete=exhausted)
                         if ex.kind == "INSERT" else None)
                break
            except sql.IncompleteSQL:
                if len(buf) > MAX_HEAD_BYTES:
                    raise self.engine.errors.error(
                        "QUERY_IS_TOO_LARGE", "Query is too large: the INSERT head is longer "
                        f"than {MAX_HEAD_BYTES} bytes") from None
                chunk = await anext(body, None) if body is not None else None
                if chunk is None:
                    exhausted = True
                else:
                    buf += chunk
        if split is not None:
            ex.insert = split
            ex.insert_data = self.with_prefix(buf[split.data_offset:],
                                              body if not exhausted else None)
            return
        if not exhausted:
            parts = [buf]
            async for chunk in body:
                parts.append(chunk)
            buf = b"".join(parts)
        ex.sql = buf

    @staticmethod
    async def with_prefix(prefix: bytes, rest: AsyncIterator[bytes] | None) -> AsyncIterator[
            bytes]:
        if prefix:
            yield prefix
        if rest is not None:
            async for chunk in rest:
                yield chunk

    # -- execution --------------------------------------------------------------------------

    async def run(self, request: Request, ex: Exchange) -> Response:
        params = request.query_params
        session: Session | None = None
        if params.get("session_id"):
            try:
                timeout = float(params.get("session_timeout") or DEFAULT_SESSION_TIMEOUT)
            except ValueError:
                raise self.engine.errors.error(
                    "INVALID_SESSION_TIMEOUT", "Invalid session timeout") from None
            session = self.engine.session(params["session_id"], timeout,
                                          must_exist=params.get("session_check") == "1")
            conn = session.connection
        else:
            conn = await self.blocking(self.engine.connect)
        scope = RequestScope(self, conn, session, ex)
        try:
            if ex.wait_end and self.spoolable(ex):
                return await self.spooled(conn, ex, scope)  # enters the scope itself
            await self.blocking(scope.enter)
            if ex.insert is not None:
                summary = await self.insert(conn, ex)
                await self.blocking(scope.exit)
                return Response(b"", headers=self.headers(ex.query_id, summary=summary))
            if self.spoolable(ex):
                return await self.stream(conn, ex, scope)
            result = await self.blocking(
                conn.query, ex.sql.decode("utf-8", "replace"), ex.fmt, ex.query_params)
            body = bytes(result.bytes()) if result is not None else b""
            summary = {"read_rows": result.rows_read(), "read_bytes": result.bytes_read(),
                       "written_rows": result.rows_written(),
                       "written_bytes": result.bytes_written(),
                       "result_bytes": len(body), "elapsed_ns": int(result.elapsed() * 1e9)}
            await self.blocking(scope.exit)
            return Response(body, headers=self.headers(
                ex.query_id, ex.fmt if ex.returns_rows else None, summary))
        except BaseException as exc:
            await self.blocking(scope.exit)
            if isinstance(exc, (BodyError, ClientDisconnect, asyncio.CancelledError)):
                raise
            if isinstance(exc, Exception):
                raise check(self.engine, exc) from None
            raise

    async def insert(self, conn, ex: Exchange) -> dict[str, int]:
        assert ex.insert is not None and ex.insert_data is not None
        started = time.perf_counter()
        inserter = await self.blocking(conn.send_insert, ex.insert.head, ex.insert.format)
        try:
            pending: list[bytes] = []
            size = 0
            async for chunk in ex.insert_data:
                pending.append(chunk)
                size += len(chunk)
                if size >= INSERT_BATCH_BYTES:
                    await self.blocking(inserter.append, b"".join(pending))
                    pending, size = [], 0
            if pending:
                await self.blocking(inserter.append, b"".join(pending))
            result = await self.blocking(inserter.finish)
        except BaseException:
            # Nothing is committed: a bad or cut-short body leaves the table as it was.
            await self.blocking(inserter.cancel)
            raise
        return {"written_rows": result.rows_written, "written_bytes": result.bytes_written,
                "elapsed_ns": int((time.perf_counter() - started) * 1e9)}

    async def stream(self, conn, ex: Exchange, scope: RequestScope) -> Response:
        """Send a result as chDB produces it; memory holds one block, not the result."""
        stream = await self.blocking(
            conn.send_query, ex.sql.decode("utf-8", "replace"), ex.fmt, ex.query_params)
        try:
            first = await self.blocking(stream.fetch)
        except BaseException:
            await self.blocking(stream.close)
            raise
        tag = secrets.token_hex(8)

        async def chunks() -> AsyncIterator[bytes]:
            chunk = first
            try:
                while chunk is not None:
                    data = chunk.bytes()
                    if data:
                        yield bytes(data)
                    chunk = await self.blocking(stream.fetch)
            except Exception as exc:  # the headers are gone: end the body the way ClickHouse does
                err = check(self.engine, exc)
                message = self.engine.errors.body(err).rstrip(b"\n")
                # The length field counts the message's bytes, without its line break.
                yield (b"\r\n__exception__\r\n" + tag.encode() + b"\r\n" + message
                       + f"\n{len(message)} {tag}\r\n__exception__\r\n".encode())
            finally:
                with contextlib.suppress(Exception):
                    await self.blocking(stream.close)
                await self.blocking(scope.exit)

        headers = self.headers(ex.query_id, ex.fmt)
        headers["X-ClickHouse-Exception-Tag"] = tag
        return StreamingResponse(chunks(), headers=headers)

    @staticmethod
    def spoolable(ex: Exchange) -> bool:
        """Whether the result can be produced block by block (streamed or spooled)."""
        return (ex.returns_rows and ex.kind in sql.STREAMED_STATEMENTS
                and ex.fmt.lower() in sql.CONCATENABLE_FORMATS)

    async def spooled(self, conn, ex: Exchange, scope: RequestScope) -> Response:
        """`wait_end_of_query=1`: finish the query before the headers, as ClickHouse does, so
        an error still gets its HTTP status. The result waits in a temporary file once it
        outgrows SPOOL_MEMORY_BYTES, so a big result does not sit in the server's memory."""
        started = time.perf_counter()
        # Closed by the response body once sent, so no `with` block here.
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115

        def execute() -> int:  # one trip to the pool: tiny queries pay for one hand-off
            scope.enter()
            size = _drain(conn, ex, spool)
            scope.exit()
            return size

        try:
            size = await self.blocking(execute)
        except BaseException:
            spool.close()
            raise
        summary = {"result_bytes": size, "elapsed_ns": int((time.perf_counter() - started) * 1e9)}
        headers = self.headers(ex.query_id, ex.fmt, summary)
        spool.seek(0)
        if not spool._rolled:  # still in memory: send it as it is
            body = spool.read()
            spool.close()
            return Response(body, headers=headers)
        headers["Content-Length"] = str(size)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while block := await self.blocking(spool.read, 1 << 20):
                    yield block
            finally:
                spool.close()

        return StreamingResponse(chunks(), headers=headers)


def _drain(conn, ex: Exchange, out) -> int:
    """Run the query and write its whole result to `out`; returns the byte count."""
    size = 0
    with conn.send_query(ex.sql.decode("utf-8", "replace"), ex.fmt, ex.query_params) as stream:
        for chunk in stream:
            data = chunk.bytes()
            out.write(data)
            size += len(data)
    return size


class RequestScope:
    """Per-request state on a connection: database, settings, external tables.

    A sessionless connection is simply closed at exit. On a session, the real server applies
    URL settings and `database` to one query, while SET and USE inside the session persist.
    Clients such as clickhouse-connect send the same URL settings with every request, so a
    session keeps the last request's URL settings applied and remembers the session's own
    values under them; only a request with other URL settings, or a SET/USE, puts the
    session's own values back first. Each query thus sees exactly what the real server shows.
    """

    def __init__(self, server: ClickHouseHTTP, conn, session: Session | None,
                 ex: Exchange) -> None:
        self.server, self.conn, self.session, self.ex = server, conn, session, ex
        self.done = False

    def enter(self) -> None:
        conn, ex, sess = self.conn, self.ex, self.session
        if sess is None:
            if ex.database:
                conn.query(f"USE {_ident(ex.database)}")
            if ex.settings:
                conn.query(_set_statement(ex.settings))
        else:
            resets = ex.kind in ("SET", "USE")  # these must act on the session's own state
            self.apply_settings(sess, {} if resets else ex.settings)
            self.apply_database(sess, None if resets else ex.database)
        for name, structure, fmt, data in ex.external:
            conn.query(f"CREATE TEMPORARY TABLE {_ident(name)} ({structure}) ENGINE = Memory")
            inserter = conn.send_insert(f"INSERT INTO {_ident(name)}", fmt)
            inserter.append(data)
            inserter.finish()

    def apply_settings(self, sess: Session, wanted: dict[str, str]) -> None:
        if sess.url_settings == wanted:
            return
        if sess.own_settings:
            # DEFAULT, not the old value, for a setting the session never SET itself.
            self.conn.query(_set_statement(sess.own_settings))
        sess.url_settings, sess.own_settings = {}, {}
        if not wanted:
            return
        names = ", ".join(_quote(n) for n in wanted)
        rows = self.conn.query(f"SELECT name, changed, value FROM system.settings "
                               f"WHERE name IN ({names})", "TSV").bytes().decode()
        own: dict[str, str | None] = {}
        for line in rows.splitlines():
            name, changed, value = line.split("\t", 2)
            own[name] = value if changed == "1" else None
        self.conn.query(_set_statement(wanted))  # an unknown setting fails here, as it should
        sess.url_settings, sess.own_settings = dict(wanted), own

    def apply_database(self, sess: Session, wanted: str | None) -> None:
        if sess.url_database == wanted:
            return
        if sess.own_database is not None:
            self.conn.query(f"USE {_ident(sess.own_database)}")
        sess.url_database = sess.own_database = None
        if wanted:
            own = self.conn.query("SELECT currentDatabase()", "TSV").bytes().decode().strip()
            self.conn.query(f"USE {_ident(wanted)}")
            sess.url_database, sess.own_database = wanted, own

    def exit(self) -> None:
        if self.done:
            return
        self.done = True
        if self.session is None:
            self.conn.close()
            return
        try:
            for name, *_ in self.ex.external:
                self.conn.query(f"DROP TEMPORARY TABLE IF EXISTS {_ident(name)}")
        finally:
            self.server.engine.release(self.session)


def _set_statement(values: dict[str, str | None]) -> str:
    return "SET " + ", ".join(f"{_ident(k)} = {'DEFAULT' if v is None else _quote(v)}"
                              for k, v in values.items())


def _utf8_header(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def _ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def build_app(handler: ClickHouseHTTP, lifespan=None) -> Starlette:
    """The ASGI app: /ping and /replicas_status answer at once; every other path runs SQL."""
    return Starlette(
        routes=[
            Route("/ping", handler.ping, methods=["GET", "HEAD"]),
            Route("/replicas_status", handler.ping, methods=["GET", "HEAD"]),
            Route("/{path:path}", handler.query, methods=["GET", "POST", "HEAD"]),
        ],
        lifespan=lifespan,
    )
