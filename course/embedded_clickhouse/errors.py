"""ClickHouse exceptions as the real server reports them over HTTP.

Error codes are read from the engine itself (system.errors), so they can never drift from the
ClickHouse version chDB embeds. The code-to-status table follows ClickHouse's
src/Server/HTTP/exceptionCodeToHTTPStatus.cpp.
"""

from __future__ import annotations

import re

_STATUS_BY_NAME: dict[str, int] = {
    "REQUIRED_PASSWORD": 401,
    **dict.fromkeys(
        ["UNKNOWN_USER", "WRONG_PASSWORD", "AUTHENTICATION_FAILED", "SET_NON_GRANTED_ROLE",
         "ACCESS_DENIED"], 403),
    **dict.fromkeys(
        ["BAD_ARGUMENTS", "CANNOT_COMPILE_REGEXP", "CANNOT_PARSE_TEXT",
         "CANNOT_PARSE_ESCAPE_SEQUENCE", "CANNOT_PARSE_QUOTED_STRING", "CANNOT_PARSE_DATE",
         "CANNOT_PARSE_DATETIME", "CANNOT_PARSE_NUMBER", "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING",
         "CANNOT_PARSE_IPV4", "CANNOT_PARSE_IPV6", "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
         "CANNOT_PARSE_UUID", "DUPLICATE_COLUMN", "ILLEGAL_COLUMN", "UNKNOWN_ELEMENT_IN_AST",
         "UNKNOWN_TYPE_OF_AST_NODE", "THERE_IS_NO_COLUMN", "TOO_DEEP_AST", "TOO_BIG_AST",
         "UNEXPECTED_AST_STRUCTURE", "SYNTAX_ERROR", "INCORRECT_DATA", "TYPE_MISMATCH",
         "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE"], 400),
    **dict.fromkeys(
        ["UNKNOWN_TABLE", "UNKNOWN_FUNCTION", "UNKNOWN_IDENTIFIER", "UNKNOWN_TYPE",
         "UNKNOWN_STORAGE", "UNKNOWN_DATABASE", "UNKNOWN_SETTING", "UNKNOWN_DIRECTION_OF_SORTING",
         "UNKNOWN_AGGREGATE_FUNCTION", "UNKNOWN_FORMAT", "UNKNOWN_DATABASE_ENGINE",
         "UNKNOWN_TYPE_OF_QUERY", "UNKNOWN_ROLE"], 404),
    "QUERY_IS_TOO_LARGE": 413,
    "NOT_IMPLEMENTED": 501,
    "SOCKET_TIMEOUT": 503,
    "CANNOT_OPEN_FILE": 503,
    "HTTP_LENGTH_REQUIRED": 411,
    "TIMEOUT_EXCEEDED": 408,
    "CANNOT_SCHEDULE_TASK": 503,
    "UNSUPPORTED_MEDIA_TYPE": 415,
}

_CODE_RE = re.compile(r"Code: (\d+)\. ")
_NAME_RE = re.compile(r"\(([A-Z0-9_]+)\)\s*$")


class ErrorCatalog:
    """Error names and codes of the running engine, and the HTTP status for each code."""

    def __init__(self, codes_by_name: dict[str, int], version: str) -> None:
        self.codes_by_name = codes_by_name
        self.names_by_code = {code: name for name, code in codes_by_name.items()}
        self.version = version
        self._status_by_code = {
            codes_by_name[name]: status
            for name, status in _STATUS_BY_NAME.items()
            if name in codes_by_name
        }

    def code(self, name: str) -> int:
        return self.codes_by_name[name]

    def status(self, code: int) -> int:
        return self._status_by_code.get(code, 500)

    def error(self, name: str, message: str) -> ClickHouseError:
        """A new exception in the engine's own format, by error name."""
        code = self.codes_by_name.get(name, 1000)
        return ClickHouseError(code, f"Code: {code}. DB::Exception: {message}. ({name})")

    def from_engine(self, exc: BaseException) -> ClickHouseError:
        """Turn an exception raised by chDB into a ClickHouseError with its real code."""
        text = str(exc)
        match = _CODE_RE.search(text)
        if match is None:
            return self.error("UNKNOWN_EXCEPTION", text or type(exc).__name__)
        # chDB prefixes messages with its own context ("Streaming query failed: ...").
        return ClickHouseError(int(match.group(1)), text[match.start():].strip())

    def body(self, err: ClickHouseError) -> bytes:
        """The error body the real server sends: the message and the server version."""
        return f"{err.message} (version {self.version} (official build))\n".encode()


class ClickHouseError(Exception):
    """An error with a ClickHouse exception code and a `Code: N. DB::Exception: ...` message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def name(self) -> str:
        match = _NAME_RE.search(self.message)
        return match.group(1) if match else ""
