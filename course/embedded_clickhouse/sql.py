"""Just enough SQL lexing for the HTTP layer: what kind of statement a request holds, its
FORMAT, whether it smuggles a second statement, and where an INSERT's inline data begins.

Parsing proper is ClickHouse's job; this only splits the request the way the real server's
HTTP handler does before it hands the statement to the engine. It works on bytes because an
INSERT's data (Native, RowBinary, ...) follows its head in the same buffer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

# Statements whose answer is a result set; only these get an X-ClickHouse-Format header.
ROW_STATEMENTS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN",
                            "CHECK", "VALUES", "("})
# Statements a GET request may run (the real server makes GET read-only).
READ_ONLY_STATEMENTS = ROW_STATEMENTS | {"SET", "USE"}
# Row statements chDB can stream block by block; SHOW, DESCRIBE, EXISTS, EXPLAIN, ... are
# refused by its streaming API ("Streaming query is not supported") and run whole instead.
STREAMED_STATEMENTS = frozenset({"SELECT", "WITH", "("})
# Output formats whose blocks, written one after another, make one valid result. chDB's
# streaming writes each block as a whole document, so a header (…WithNames), a wrapper (JSON,
# XML), a separator between rows (Values) or a file layout (Arrow, Parquet) would repeat.
CONCATENABLE_FORMATS = frozenset({
    "tabseparated", "tsv", "tabseparatedraw", "tsvraw", "csv", "jsoneachrow", "jsonlines",
    "ndjson", "jsonstringseachrow", "jsoncompacteachrow", "jsoncompactstringseachrow",
    "customseparated", "tskv", "lineasstring", "rowbinary", "native",
})

_SPACE = b" \t\r\n\f\v"
_WORD_START = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_WORD_BODY = _WORD_START | set(b"0123456789$")


class IncompleteSQL(Exception):
    """The buffer ends inside a token; more bytes are needed to decide."""


@dataclass(frozen=True)
class Token:
    kind: str  # "word", "quoted", "string", "number", "punct"
    start: int
    end: int
    text: bytes

    @property
    def upper(self) -> str:
        return self.text.decode("utf-8", "replace").upper()


def tokens(buf: bytes, *, complete: bool = True) -> Iterator[Token]:
    """Yield the tokens of `buf`, skipping whitespace and comments.

    With `complete=False` a token that touches the end of the buffer raises IncompleteSQL,
    because the next chunk of the request might extend it.
    """
    i, n = 0, len(buf)
    while i < n:
        c = buf[i]
        if c in _SPACE:
            i += 1
        elif buf.startswith(b"--", i) or c == 0x23:  # '--' and '#' run to the end of the line
            j = buf.find(b"\n", i)
            if j < 0:
                if not complete:
                    raise IncompleteSQL
                return
            i = j + 1
        elif buf.startswith(b"/*", i):
            j = buf.find(b"*/", i + 2)
            if j < 0:
                if not complete:
                    raise IncompleteSQL
                return
            i = j + 2
        elif c in b"'\"`":
            j = _closing_quote(buf, i)
            if j < 0:
                if not complete:
                    raise IncompleteSQL
                yield Token("string" if c == 0x27 else "quoted", i, n, buf[i:])
                return
            yield Token("string" if c == 0x27 else "quoted", i, j + 1, buf[i : j + 1])
            i = j + 1
        elif c in _WORD_START:
            j = i + 1
            while j < n and buf[j] in _WORD_BODY:
                j += 1
            if j == n and not complete:
                raise IncompleteSQL
            yield Token("word", i, j, buf[i:j])
            i = j
        elif 0x30 <= c <= 0x39:
            j = i + 1
            while j < n and (buf[j] in _WORD_BODY or buf[j] == 0x2E):
                j += 1
            yield Token("number", i, j, buf[i:j])
            i = j
        else:
            yield Token("punct", i, i + 1, buf[i : i + 1])
            i += 1


def _closing_quote(buf: bytes, start: int) -> int:
    quote = buf[start]
    i, n = start + 1, len(buf)
    while i < n:
        c = buf[i]
        if c == 0x5C:  # backslash escapes the next byte
            i += 2
            continue
        if c == quote:
            if i + 1 < n and buf[i + 1] == quote:  # doubled quote is an escaped quote
                i += 2
                continue
            return i
        i += 1
    return -1


def statement_kind(sql: bytes) -> str:
    """The leading keyword of the statement, upper-cased ('' for an empty query)."""
    for tok in tokens(sql):
        return "(" if tok.text == b"(" else tok.upper
    return ""


def has_several_statements(sql: bytes) -> bool:
    """True when something other than whitespace or comments follows a top-level ';'."""
    seen_semicolon = False
    for tok in tokens(sql):
        if seen_semicolon:
            return True
        if tok.text == b";":
            seen_semicolon = True
    return False


def output_format(sql: bytes) -> str | None:
    """The format named by a trailing `FORMAT name` clause, if the statement has one."""
    toks = [t for t in tokens(sql) if t.text != b";"]
    if len(toks) < 3:  # `EXISTS format`, `DESC format`: a table named format, no clause
        return None
    prev, tok = toks[-2], toks[-1]
    if prev.kind == "word" and prev.upper == "FORMAT" and tok.kind in ("word", "quoted"):
        return tok.text.strip(b"`\"").decode()
    return None


@dataclass(frozen=True)
class InsertSplit:
    """An INSERT with inline data: the head to prepare, the data's format, where data starts."""

    head: str
    format: str
    data_offset: int


def split_insert(buf: bytes, *, complete: bool) -> InsertSplit | None:
    """Find where an INSERT's inline data begins in `buf`.

    Returns None when the INSERT carries no inline data (INSERT ... SELECT, FROM INFILE).
    Raises IncompleteSQL when `buf` ends before the head does.
    """
    prev: Token | None = None
    for tok in tokens(buf, complete=complete):
        word = tok.upper if tok.kind == "word" else ""
        if prev is not None and prev.upper == "FORMAT" and prev.kind == "word":
            if tok.kind not in ("word", "quoted"):
                return None
            offset = _skip_to_data(buf, tok.end)
            if not complete and offset == len(buf) and buf[offset - 1] != 0x0A:
                raise IncompleteSQL  # the line break that ends the head may be in the next chunk
            return InsertSplit(
                head=buf[: prev.start].decode("utf-8"),
                format=tok.text.strip(b"`\"").decode(),
                data_offset=offset,
            )
        if word == "VALUES":
            return InsertSplit(head=buf[: tok.start].decode("utf-8"), format="Values",
                               data_offset=tok.end)
        if word in ("SELECT", "WITH", "INFILE"):
            return None
        prev = tok
    if not complete:
        raise IncompleteSQL
    return None


def _skip_to_data(buf: bytes, pos: int) -> int:
    """After `FORMAT name`, data starts past blanks and at most one line break, as in ClickHouse."""
    n = len(buf)
    while pos < n and buf[pos] in b" \t\f":
        pos += 1
    if pos < n and buf[pos] == 0x0D:
        pos += 1
    if pos < n and buf[pos] == 0x0A:
        pos += 1
    return pos
