"""The HTTP layer's SQL lexing (`course.embedded_clickhouse.sql`), without a server."""

from __future__ import annotations

import pytest

from course.embedded_clickhouse import sql
from course.embedded_clickhouse.sql import IncompleteSQL, split_insert


@pytest.mark.parametrize(("text", "kind"), [
    (b"select 1", "SELECT"),
    (b"  \n\tWITH x AS (SELECT 1) SELECT * FROM x", "WITH"),
    (b"-- a comment\n/* block */ insert into t values (1)", "INSERT"),
    (b"# hash comment\nCREATE TABLE t (a UInt8) ENGINE = Memory", "CREATE"),
    (b"(SELECT 1) UNION ALL (SELECT 2)", "("),
    (b"", ""),
    (b"  -- only a comment", ""),
])
def test_statement_kind_is_the_first_keyword_upper_cased(text, kind):
    """Whitespace and comments are skipped; the first word (or '(') names the statement."""
    assert sql.statement_kind(text) == kind


@pytest.mark.parametrize(("text", "several"), [
    (b"SELECT 1", False),
    (b"SELECT 1;", False),
    (b"SELECT 1;  \n -- trailing comment\n", False),
    (b"SELECT 1; /* block */", False),
    (b"SELECT 1; SELECT 2", True),
    (b"SELECT 1;DROP TABLE t", True),
    (b"SELECT 'a;b'", False),
    (b"SELECT 'it''s; fine'", False),
    (b"SELECT 'esc\\'; still a string'", False),
    (b'SELECT 1 AS "x;y"', False),
    (b"SELECT 1 AS `x;y`", False),
    (b"SELECT 1 -- ; SELECT 2\n", False),
    (b"SELECT 1 /* ; SELECT 2 */", False),
    (b"SELECT 'a;b'; SELECT 2", True),
])
def test_has_several_statements_ignores_semicolons_in_strings_and_comments(text, several):
    """Only a top-level ';' followed by a real token makes a second statement."""
    assert sql.has_several_statements(text) is several


@pytest.mark.parametrize(("text", "fmt"), [
    (b"SELECT 1 FORMAT JSONEachRow", "JSONEachRow"),
    (b"SELECT 1 format CSV;", "CSV"),
    (b"SELECT 1 FORMAT `TabSeparated`", "TabSeparated"),
    (b"SELECT 1 FORMAT \"Native\"\n", "Native"),
    (b"SELECT 1", None),
    (b"SELECT 'FORMAT CSV'", None),
    (b"SELECT 1 -- FORMAT CSV", None),
    (b"SELECT format", None),
])
def test_output_format_reads_only_a_trailing_format_clause(text, fmt):
    """The format comes from a real trailing `FORMAT name`, never from strings or comments."""
    assert sql.output_format(text) == fmt


def test_split_insert_with_format_skips_blanks_and_one_newline():
    """Data begins after the format name, its blanks and exactly one line break."""
    head = b"INSERT INTO db.t (a, b) FORMAT CSV  \r\n"
    buf = head + b"\n1,x\n"
    split = split_insert(buf, complete=True)
    assert split is not None
    assert split.format == "CSV"
    assert split.head == "INSERT INTO db.t (a, b) "
    assert split.data_offset == len(head)
    assert buf[split.data_offset:] == b"\n1,x\n"  # the second newline belongs to the data


def test_split_insert_data_on_the_same_line():
    """Without a newline, data starts right after the blanks that follow the format name."""
    buf = b"insert into t format JSONEachRow {\"a\": 1}"
    split = split_insert(buf, complete=True)
    assert split is not None and split.format == "JSONEachRow"
    assert buf[split.data_offset:] == b"{\"a\": 1}"


def test_split_insert_keeps_binary_data_intact():
    """Bytes after the head are never lexed: RowBinary may hold quotes, ';' or NULs."""
    data = b"\x01\x00'\";--\n/*\xff"
    buf = b"INSERT INTO t FORMAT RowBinary\n" + data
    split = split_insert(buf, complete=True)
    assert split is not None and split.format == "RowBinary"
    assert buf[split.data_offset:] == data


def test_split_insert_values():
    """VALUES: the head stops before the keyword and the Values data starts after it."""
    buf = b"INSERT INTO t (a) VALUES (1), ('a;b')"
    split = split_insert(buf, complete=True)
    assert split is not None
    assert split.format == "Values"
    assert split.head == "INSERT INTO t (a) "
    assert buf[split.data_offset:] == b" (1), ('a;b')"


@pytest.mark.parametrize("text", [
    b"INSERT INTO t SELECT number FROM numbers(3)",
    b"INSERT INTO t (a) WITH 1 AS x SELECT x",
    b"INSERT INTO t FROM INFILE 'data.csv' FORMAT CSV",
    b"INSERT INTO t",
])
def test_split_insert_without_inline_data_is_none(text):
    """INSERT ... SELECT / WITH / FROM INFILE, or no data at all, carries no inline data."""
    assert split_insert(text, complete=True) is None


@pytest.mark.parametrize("partial", [
    b"INSERT INTO t FORM",
    b"INSERT INTO t FORMAT",
    b"INSERT INTO t FORMAT CS",
    b"INSERT INTO t FORMAT CSV",  # might become CSVWithNames with the next chunk
    b"INSERT INTO t FORMAT CSV ",  # a newline that belongs to the head may come next
    b"INSERT INTO t FORMAT CSV\r",
    b"INSERT INTO t /* comment",
    b"INSERT INTO `my tab",
    b"INSERT INTO t (a",
])
def test_split_insert_on_a_partial_buffer_asks_for_more(partial):
    """A buffer that may end inside the head raises IncompleteSQL rather than guessing."""
    with pytest.raises(IncompleteSQL):
        split_insert(partial, complete=False)


def test_split_insert_partial_then_complete_agree():
    """Once the head is whole, the streaming and the complete answers are the same."""
    buf = b"INSERT INTO t FORMAT TabSeparated\n1\t2\n"
    assert split_insert(buf, complete=False) == split_insert(buf, complete=True)


def test_tokens_on_a_partial_buffer():
    """An unterminated string or comment at the end is incomplete, not a token."""
    with pytest.raises(IncompleteSQL):
        list(sql.tokens(b"SELECT 'abc", complete=False))
    with pytest.raises(IncompleteSQL):
        list(sql.tokens(b"SELECT 1 -- no newline yet", complete=False))
    texts = [t.text for t in sql.tokens(b"SELECT 'it''s', `a``b` -- c\n", complete=True)]
    assert texts == [b"SELECT", b"'it''s'", b",", b"`a``b`"]
